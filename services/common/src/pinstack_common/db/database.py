"""The async SQLAlchemy engine and sessions of one service's own database."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pinstack_common.db.engine import create_engine
from pinstack_common.observability.metrics import DB_POOL_CONNECTIONS, DB_QUERY_DURATION
from pinstack_common.observability.telemetry import instrument_engine

__all__ = ["Database"]


class Database:
    """Owns one engine; ``transaction()`` is the unit of work use cases run in."""

    def __init__(self, *, url: str, component: str, pool_size: int = 10) -> None:
        self.component = component
        self.engine: AsyncEngine = create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._instrument()
        instrument_engine(self.engine)  # SQL spans, when tracing is on

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (no commit needed)."""
        async with self.sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()

    def _instrument(self) -> None:
        sync_engine = self.engine.sync_engine
        histogram = DB_QUERY_DURATION.labels(self.component)
        checked_out = DB_POOL_CONNECTIONS.labels(self.component, "checked_out")
        idle = DB_POOL_CONNECTIONS.labels(self.component, "idle")

        def before(
            conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any
        ) -> None:
            context._pinstack_started = time.perf_counter()

        def after(
            conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any
        ) -> None:
            histogram.observe(time.perf_counter() - context._pinstack_started)

        def checkout(*_: Any) -> None:
            checked_out.inc()
            idle.set(max(0, sync_engine.pool.checkedin()))  # type: ignore[attr-defined]

        def checkin(*_: Any) -> None:
            checked_out.dec()
            idle.set(max(0, sync_engine.pool.checkedin()))  # type: ignore[attr-defined]

        event.listen(sync_engine, "before_cursor_execute", before)
        event.listen(sync_engine, "after_cursor_execute", after)
        event.listen(sync_engine.pool, "checkout", checkout)
        event.listen(sync_engine.pool, "checkin", checkin)
