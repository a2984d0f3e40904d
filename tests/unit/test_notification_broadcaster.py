"""The in-replica fan-out behind the WebSocket push (fed by the shared Redis stream)."""

from __future__ import annotations

from pinstack.notification.v1.notification_pb2 import Notification
from pinstack_notification.broadcaster import CLOSED, NotificationBroadcaster


def note(notification_id: int, user_id: int) -> Notification:
    return Notification(id=notification_id, user_id=user_id, type="t")


async def test_only_the_recipients_streams_get_it() -> None:
    hub = NotificationBroadcaster()
    async with hub.subscribe(1) as first, hub.subscribe(1) as second, hub.subscribe(2) as other:
        assert hub.has_subscribers(1)
        assert hub.deliver(note(10, 1)) == 2
        assert first.get_nowait().id == 10  # type: ignore[union-attr]
        assert second.get_nowait().id == 10  # type: ignore[union-attr]
        assert other.empty()
    assert hub.subscriber_count == 0
    assert not hub.has_subscribers(1)


async def test_slow_stream_drops_oldest() -> None:
    hub = NotificationBroadcaster(queue_size=2)
    async with hub.subscribe(1) as queue:
        for i in range(3):
            hub.deliver(note(i, 1))
        assert [queue.get_nowait().id for _ in range(2)] == [1, 2]  # type: ignore[union-attr]


async def test_close_ends_streams() -> None:
    hub = NotificationBroadcaster(queue_size=1)
    async with hub.subscribe(1) as queue:
        hub.deliver(note(1, 1))
        hub.close()
        assert queue.get_nowait() is CLOSED
        assert hub.deliver(note(2, 1)) == 0  # nothing after the end
        assert queue.empty()
    async with hub.subscribe(1) as late:
        assert late.get_nowait() is CLOSED


def test_deliver_without_subscribers_is_a_no_op() -> None:
    assert NotificationBroadcaster().deliver(note(1, 1)) == 0
