"""Events the relation service publishes on ``pinstack.relation.events.v1``, keyed by followee."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.relation.v1 import events_pb2
from pinstack_common.events.outbox import Outbox

__all__ = ["TOPIC", "RelationEvents"]

TOPIC = "pinstack.relation.events.v1"


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class RelationEvents:
    """Announces follow changes through the outbox, inside the caller's transaction."""

    def __init__(self, *, outbox: Outbox) -> None:
        self._outbox = outbox

    async def created(self, session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
        message = events_pb2.FollowCreated(
            follower_id=follower_id, followee_id=followee_id, occurred_at=_now()
        )
        await self._outbox.add(session, topic=TOPIC, key=str(followee_id), message=message)

    async def deleted(self, session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
        message = events_pb2.FollowDeleted(
            follower_id=follower_id, followee_id=followee_id, occurred_at=_now()
        )
        await self._outbox.add(session, topic=TOPIC, key=str(followee_id), message=message)
