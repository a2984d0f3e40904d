"""Events the post service publishes on ``pinstack.post.events.v1``, keyed by post id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.post.v1 import events_pb2
from pinstack.user.v1.events_pb2 import UserDeleted, UserUpdated
from pinstack_common.events.outbox import Outbox
from pinstack_post.repository import PostRecord

if TYPE_CHECKING:  # usecases imports this module; the handlers only need the type
    from pinstack_post.usecases import PostUseCases

__all__ = ["TOPIC", "PostEvents", "user_event_handlers"]

TOPIC = "pinstack.post.events.v1"


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class PostEvents:
    """Announces post changes through the outbox, inside the caller's transaction."""

    def __init__(self, *, outbox: Outbox) -> None:
        self._outbox = outbox

    async def created(self, session: AsyncSession, post: PostRecord) -> None:
        message = events_pb2.PostCreated(
            post_id=post.id, author_id=post.author_id, title=post.title, occurred_at=_now()
        )
        await self._outbox.add(session, topic=TOPIC, key=str(post.id), message=message)

    async def updated(self, session: AsyncSession, post: PostRecord) -> None:
        message = events_pb2.PostUpdated(
            post_id=post.id, author_id=post.author_id, occurred_at=_now()
        )
        await self._outbox.add(session, topic=TOPIC, key=str(post.id), message=message)

    async def deleted(self, session: AsyncSession, *, post_id: int, author_id: int) -> None:
        message = events_pb2.PostDeleted(post_id=post_id, author_id=author_id, occurred_at=_now())
        await self._outbox.add(session, topic=TOPIC, key=str(post_id), message=message)


def user_event_handlers(
    use_cases: PostUseCases,
) -> tuple[
    Callable[[UserDeleted, AsyncSession], Awaitable[None]],
    Callable[[UserUpdated, AsyncSession], Awaitable[None]],
]:
    """Handlers for the user events the post service consumes (deleted, updated)."""

    async def on_deleted(event: UserDeleted, session: AsyncSession) -> None:
        await use_cases.delete_posts_of_author(event.user_id, session=session)

    async def on_updated(event: UserUpdated, _session: AsyncSession) -> None:
        await use_cases.refresh_author(event.user_id)

    return on_deleted, on_updated
