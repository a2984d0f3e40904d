"""Events the auth service consumes: a deleted user's credentials and sessions go with them.

Auth publishes nothing. The composition root registers these handlers on an
``EventConsumer`` (``consumer.on(UserDeleted, handler)``), which runs each in a transaction that
also records the event id in ``processed_events``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_auth.usecases import AuthUseCases

__all__ = ["user_deleted_handler"]


def user_deleted_handler(
    usecases: AuthUseCases,
) -> Callable[[UserDeleted, AsyncSession], Awaitable[None]]:
    async def handle(event: UserDeleted, session: AsyncSession) -> None:
        await usecases.forget_user(event.user_id, session=session)

    return handle
