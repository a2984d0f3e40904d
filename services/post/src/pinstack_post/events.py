"""Events the post service publishes on ``pinstack.post.events.v1``, keyed by post id."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.post.v1 import events_pb2
from pinstack_common.events.outbox import Outbox
from pinstack_post.repository import PostRecord

__all__ = ["TOPIC", "PostEvents"]

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
