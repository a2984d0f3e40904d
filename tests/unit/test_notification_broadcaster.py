"""The in-service fan-out behind the WebSocket push."""

from __future__ import annotations

from datetime import UTC, datetime

from pinstack_notification.broadcaster import CLOSED, NotificationBroadcaster
from pinstack_notification.repository import NotificationRecord


def record(notification_id: int, user_id: int) -> NotificationRecord:
    return NotificationRecord(
        id=notification_id, user_id=user_id, type="t", is_read=False, payload=None,
        created_at=datetime.now(UTC),
    )  # fmt: skip


async def test_only_the_recipients_streams_get_it() -> None:
    hub = NotificationBroadcaster()
    async with hub.subscribe(1) as first, hub.subscribe(1) as second, hub.subscribe(2) as other:
        hub.publish(record(10, 1))
        assert first.get_nowait().id == 10
        assert second.get_nowait().id == 10
        assert other.empty()
    assert hub.subscriber_count == 0


async def test_slow_stream_drops_oldest() -> None:
    hub = NotificationBroadcaster(queue_size=2)
    async with hub.subscribe(1) as queue:
        for i in range(3):
            hub.publish(record(i, 1))
        assert [queue.get_nowait().id for _ in range(2)] == [1, 2]  # type: ignore[union-attr]


async def test_close_ends_streams() -> None:
    hub = NotificationBroadcaster(queue_size=1)
    async with hub.subscribe(1) as queue:
        hub.publish(record(1, 1))
        hub.close()
        assert queue.get_nowait() is CLOSED
    async with hub.subscribe(1) as late:
        assert late.get_nowait() is CLOSED


def test_publish_without_subscribers_is_a_no_op() -> None:
    NotificationBroadcaster().publish(record(1, 1))
