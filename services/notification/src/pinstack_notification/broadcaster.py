"""Local fan-out of new notifications to the live streams this replica holds (the WebSocket push).

The gateway's ``GET /api/v1/notification/ws`` opens the server-streaming RPC
``NotificationService.StreamNotifications``; the servicer subscribes the verified caller here.
Nothing in the creating code path delivers to this broadcaster: its only feed is the shared push
stream in Redis (:mod:`pinstack_notification.push`), which every replica reads, so a stream sees
every notification of its user exactly once whichever replica created it.

A slow stream loses its oldest pending pushes (bounded queue) rather than holding memory; the
feed remains the source of truth.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pinstack.notification.v1.notification_pb2 import Notification

__all__ = ["CLOSED", "NotificationBroadcaster", "Subscription"]

# Put on every queue when the service stops, so open streams end instead of being cancelled.
CLOSED = None

Subscription = asyncio.Queue[Notification | None]


class NotificationBroadcaster:
    def __init__(self, *, queue_size: int = 100) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[int, set[Subscription]] = defaultdict(set)
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

    def has_subscribers(self, user_id: int) -> bool:
        return user_id in self._subscribers

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

    def deliver(self, notification: Notification) -> int:
        """Hand ``notification`` to every local stream of its recipient; never blocks.

        Returns how many streams got it.
        """
        if self._closed:
            return 0
        queues = self._subscribers.get(notification.user_id, ())
        for queue in queues:
            if queue.full():
                queue.get_nowait()  # drop the oldest: the socket is too slow to keep up
            queue.put_nowait(notification)
        return len(queues)

    def close(self) -> None:
        self._closed = True
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(CLOSED)
