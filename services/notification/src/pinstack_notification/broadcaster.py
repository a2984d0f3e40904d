"""Live fan-out of new notifications to the streams of connected users (the WebSocket push).

Design: the gateway's ``GET /api/v1/notification/ws`` opens the server-streaming RPC
``NotificationService.StreamNotifications`` with the caller's token; the servicer subscribes to
this broadcaster for the verified caller, and the use cases publish every notification right
after the transaction that created it commits. The push therefore never waits for the event
relay, and it works the same in embedded mode (all in one process) and in distributed mode
(gateway and notification service in separate processes: the stream crosses gRPC).

Limits, on purpose: the fan-out is per process. With several notification replicas, a socket
sees the notifications created by the replica it streams from; feeding :meth:`publish` from the
``pinstack.notification.events.v1`` topic with a per-replica consumer group removes that limit
without touching the servicer or the gateway. A slow socket loses its oldest pending pushes
(bounded queue) rather than holding memory; the feed remains the source of truth.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pinstack_notification.repository import NotificationRecord

__all__ = ["CLOSED", "NotificationBroadcaster", "Subscription"]

# Put on every queue when the service stops, so open streams end instead of being cancelled.
CLOSED = None

Subscription = asyncio.Queue[NotificationRecord | None]


class NotificationBroadcaster:
    def __init__(self, *, queue_size: int = 100) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[int, set[Subscription]] = defaultdict(set)
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

    @asynccontextmanager
    async def subscribe(self, user_id: int) -> AsyncIterator[Subscription]:
        queue: Subscription = asyncio.Queue(maxsize=self._queue_size)
        if self._closed:
            queue.put_nowait(CLOSED)
        self._subscribers[user_id].add(queue)
        try:
            yield queue
        finally:
            queues = self._subscribers.get(user_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[user_id]

    def publish(self, record: NotificationRecord) -> None:
        """Hand ``record`` to every stream of its recipient; never blocks the caller."""
        for queue in self._subscribers.get(record.user_id, ()):
            if queue.full():
                queue.get_nowait()  # drop the oldest: the socket is too slow to keep up
            queue.put_nowait(record)

    def close(self) -> None:
        self._closed = True
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(CLOSED)
