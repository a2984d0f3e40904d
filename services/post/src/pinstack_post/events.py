"""The post service's events: what it announces and what it consumes.

Announces post changes on ``pinstack.post.events.v1``, keyed by post id; consumes ``UserDeleted``
(the author's posts go) and ``UserUpdated`` (the cached author summary is refreshed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.post.v1 import events_pb2
from pinstack.user.v1.events_pb2 import UserDeleted, UserUpdated
from pinstack_common.events.outbox import Outbox
from pinstack_common.events.topics import POST_EVENTS, USER_EVENTS
from pinstack_common.runtime import EventHandlers
from pinstack_common.timestamps import now_timestamp
from pinstack_post.repository import PostRecord

__all__ = ["CONSUMED_TOPICS", "PostEvents", "handlers"]

CONSUMED_TOPICS = (USER_EVENTS,)


@dataclass(kw_only=True, eq=False)
class PostEvents:
    """Announces post changes through the outbox, inside the caller's transaction."""

    outbox: Outbox

    async def created(self, session: AsyncSession, post: PostRecord) -> None:
        message = events_pb2.PostCreated(
            post_id=post.id, author_id=post.author_id, title=post.title, occurred_at=now_timestamp()
        )
        await self.outbox.add(session, topic=POST_EVENTS, key=str(post.id), message=message)

    async def updated(self, session: AsyncSession, post: PostRecord) -> None:
        message = events_pb2.PostUpdated(
            post_id=post.id, author_id=post.author_id, occurred_at=now_timestamp()
        )
        await self.outbox.add(session, topic=POST_EVENTS, key=str(post.id), message=message)

    async def deleted(self, session: AsyncSession, *, post_id: int, author_id: int) -> None:
        message = events_pb2.PostDeleted(
            post_id=post_id, author_id=author_id, occurred_at=now_timestamp()
        )
        await self.outbox.add(session, topic=POST_EVENTS, key=str(post_id), message=message)


def handlers(
    *,
    delete_posts_of_author: Callable[[int, AsyncSession], Awaitable[object]],
    refresh_author: Callable[[int], Awaitable[object]],
) -> EventHandlers:
    """The consumed events, each mapped onto the use case it triggers."""

    async def on_user_deleted(event: UserDeleted, session: AsyncSession) -> None:
        await delete_posts_of_author(event.user_id, session)

    async def on_user_updated(event: UserUpdated, _session: AsyncSession) -> None:
        await refresh_author(event.user_id)

    return {UserDeleted: on_user_deleted, UserUpdated: on_user_updated}
