"""Composition root of the auth service: build the collaborators, run the gRPC server.

``pinstack serve auth`` and ``pinstack up`` start :class:`AuthComponent`; the CLI migrates the
database first (``pinstack_common.db.migrations.upgrade(package=MIGRATIONS_PACKAGE, ...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from functools import partial

import structlog

from pinstack.auth.v1 import auth_pb2_grpc
from pinstack_auth.clients import GrpcUserDirectory
from pinstack_auth.events import CONSUMED_TOPICS, handlers
from pinstack_auth.grpc_api import AuthServicer
from pinstack_auth.keys import KeyRing, load_key_file, load_or_create_db_key
from pinstack_auth.models import processed_events
from pinstack_auth.passwords import PasswordHasher
from pinstack_auth.ratelimit import login_limiter
from pinstack_auth.repository import AuthRepository
from pinstack_auth.revocations import RevocationSync, Revoker
from pinstack_auth.settings import AuthSettings
from pinstack_auth.tokens import TokenService
from pinstack_auth.usecases import AuthUseCases
from pinstack_common.db.database import Database
from pinstack_common.events import EventTransport
from pinstack_common.runtime import ServiceComponent, ServiceRuntime
from pinstack_common.security.revocation import SessionRevocations

__all__ = ["MIGRATIONS_PACKAGE", "SERVICE_NAME", "AuthComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_auth"
SERVICE_NAME = "pinstack.auth.v1.AuthService"

log = structlog.get_logger(__name__)


class AuthComponent(ServiceComponent):
    """The auth service as a :class:`pinstack_common.lifecycle.Component`."""

    name = "auth"
    settings: AuthSettings
    use_cases: AuthUseCases | None = None

    async def wire(self, runtime: ServiceRuntime) -> None:
        s = self.settings
        database = runtime.database()
        redis = runtime.redis()
        keys = await self._load_keys(database)
        tokens = TokenService(
            keys=keys,
            access_ttl=timedelta(seconds=s.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=s.refresh_token_ttl_seconds),
        )
        revoker = Revoker(
            database=database,
            cache=SessionRevocations(redis=redis, component="auth"),
            lifetime=timedelta(seconds=s.access_token_ttl_seconds),
            clock=tokens.now,
        )
        self.use_cases = AuthUseCases(
            database=database,
            repository=AuthRepository(),
            users=GrpcUserDirectory(stub=runtime.users()),
            passwords=PasswordHasher(
                time_cost=s.argon2_time_cost,
                memory_cost_kib=s.argon2_memory_cost_kib,
                parallelism=s.argon2_parallelism,
                max_concurrent=s.argon2_max_concurrent,
                max_queued=s.argon2_max_queued,
                queue_timeout_seconds=s.argon2_queue_timeout_seconds,
            ),
            tokens=tokens,
            limiter=login_limiter(
                runtime.rate_limiter(redis),
                per_account=s.login_failures_per_account,
                per_account_address=s.login_failures_per_account_address,
                per_address=s.login_failures_per_address,
            ),
            revocations=revoker,
        )
        # Before serving: a Redis restarted empty is re-warmed from the record, and logouts
        # whose write-through failed reach Redis once it answers again.
        sync = RevocationSync(revoker=revoker, interval=s.revocation_sync_interval_seconds,
                              max_backoff=s.revocation_sync_interval_seconds)  # fmt: skip
        await sync.start()
        runtime.on_close(sync.stop)
        await runtime.consume(
            database=database,
            processed=processed_events,
            topics=CONSUMED_TOPICS,
            handlers=handlers(forget_user=self.use_cases.forget_user),
        )
        await runtime.serve(
            service_name=SERVICE_NAME,
            registration=partial(
                auth_pb2_grpc.add_AuthServiceServicer_to_server,
                AuthServicer(usecases=self.use_cases),
            ),
        )
        purger = asyncio.create_task(self._purge_periodically(self.use_cases))
        runtime.on_close(partial(_cancel, purger))
        log.info("auth started", address=runtime.address, signing_kid=keys.signing.kid)

    async def stop(self) -> None:
        await super().stop()
        self.use_cases = None

    async def _purge_periodically(self, use_cases: AuthUseCases) -> None:
        while True:
            await asyncio.sleep(self.settings.session_purge_interval_seconds)
            try:
                purged = await use_cases.purge_sessions()
            except Exception:
                # Housekeeping only: a database hiccup must not end the task for good.
                log.exception("session purge failed")
            else:
                log.info("ended sessions purged", count=purged)

    async def _load_keys(self, database: Database) -> KeyRing:
        if self.settings.auth_signing_key_file is not None:
            return load_key_file(self.settings.auth_signing_key_file)
        async with database.transaction() as session:
            return await load_or_create_db_key(session)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_component(
    settings: AuthSettings, *, transport: EventTransport | None = None
) -> AuthComponent:
    return AuthComponent(settings=settings, transport=transport)
