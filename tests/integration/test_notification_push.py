"""The cross-replica push path (``pinstack_notification.push``) against a real Redis.

Each "replica" is a :class:`RedisPush` with a broadcaster of its own, as in a notification
process; they share only Redis. Waits poll with a deadline; "nothing more arrives" is checked
with a marker published afterwards: the stream is one ordered log that every reader reads in
order, so once the marker arrived, anything published before it has arrived too.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from pinstack.notification.v1.notification_pb2 import Notification
from pinstack_common.cache import open_redis
from pinstack_devinfra.redis import RedisServer
from pinstack_notification.broadcaster import NotificationBroadcaster, Subscription
from pinstack_notification.push import RedisPush, open_reader

DEADLINE = 10.0
_ids = itertools.count(1_000_000 + uuid.uuid4().int % 10**6)


class Replica:
    def __init__(self, push: RedisPush, broadcaster: NotificationBroadcaster, reader: Redis):
        self.push = push
        self.broadcaster = broadcaster
        self.reader = reader


Start = Callable[[], Awaitable[Replica]]


def note(user_id: int, type: str = "t") -> Notification:
    return Notification(id=next(_ids), user_id=user_id, type=type)


def someone() -> int:
    return 10_000 + uuid.uuid4().int % 10**8


@pytest.fixture
def stream() -> str:
    return f"test:push:{uuid.uuid4().hex}"


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = open_redis(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def start_replica(
    redis_server: RedisServer, redis: Redis, stream: str
) -> AsyncIterator[Start]:
    started: list[Replica] = []

    async def start() -> Replica:
        reader = open_reader(redis_server.url, client_name=f"push-reader-{uuid.uuid4().hex}")
        broadcaster = NotificationBroadcaster()
        push = RedisPush(redis=redis, reader=reader, broadcaster=broadcaster, stream=stream)
        await push.start()
        replica = Replica(push, broadcaster, reader)
        started.append(replica)
        return replica

    yield start
    for replica in reversed(started):
        await replica.push.stop()
        await replica.reader.aclose()


async def receive_until(queue: Subscription, *last: int) -> list[int]:
    """Ids that arrive on ``queue`` until all of ``last`` did, within the deadline."""
    received: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not set(last) <= set(received):
        try:
            item = await asyncio.wait_for(queue.get(), timeout=deadline - loop.time())
        except TimeoutError:
            raise AssertionError(f"{last} did not all arrive; got {received}") from None
        assert item is not None
        received.append(item.id)
    return received


async def test_each_stream_gets_each_notification_once_whichever_replica_created_it(
    start_replica: Start,
) -> None:
    a, b = await start_replica(), await start_replica()
    user, other = someone(), someone()
    async with (
        a.broadcaster.subscribe(user) as on_a,
        a.broadcaster.subscribe(user) as on_a_too,
        b.broadcaster.subscribe(user) as on_b,
        b.broadcaster.subscribe(other) as others,
    ):
        by: dict[str, list[int]] = {"a": [], "b": []}
        for i in range(20):
            notification = note(user)
            (a if i % 2 else b).push.publish(notification)
            by["a" if i % 2 else "b"].append(notification.id)
        # One marker per replica: each writer appends in order, the two interleave freely.
        markers = {"a": note(user, "marker"), "b": note(user, "marker")}
        a.push.publish(markers["a"])
        b.push.publish(markers["b"])
        for queue in (on_a, on_a_too, on_b):
            received = await receive_until(queue, *(m.id for m in markers.values()))
            assert len(received) == len(set(received)) == 22
            for name, ids in by.items():  # each creator's own order is kept
                assert [i for i in received if i in {*ids, markers[name].id}] == [
                    *ids,
                    markers[name].id,
                ]
            assert queue.empty()
        assert others.empty()


async def test_a_replica_does_not_replay_what_was_published_before_it_started(
    start_replica: Start,
) -> None:
    first = await start_replica()
    user = someone()
    earlier = note(user)
    first.push.publish(earlier)
    async with first.broadcaster.subscribe(user) as on_first:
        await receive_until(on_first, earlier.id)  # it is in the stream now
    late = await start_replica()
    async with late.broadcaster.subscribe(user) as on_late:
        marker = note(user)
        first.push.publish(marker)
        assert await receive_until(on_late, marker.id) == [marker.id]


async def test_a_repeated_entry_is_delivered_once(
    start_replica: Start, redis: Redis, stream: str
) -> None:
    replica = await start_replica()
    user = someone()
    notification = note(user)
    fields: dict[FieldT, EncodableT] = {
        "u": user, "i": notification.id, "n": notification.SerializeToString(),
    }  # fmt: skip
    async with replica.broadcaster.subscribe(user) as queue:
        # What a publish retried after a lost reply leaves behind.
        await redis.xadd(stream, fields)
        await redis.xadd(stream, fields)
        garbage: dict[FieldT, EncodableT] = {"u": user, "i": "x", "n": b"garbage"}
        await redis.xadd(stream, garbage)  # skipped, logged
        marker = note(user)
        replica.push.publish(marker)
        assert await receive_until(queue, marker.id) == [notification.id, marker.id]


async def test_stop_flushes_what_is_pending(start_replica: Start) -> None:
    stopping, staying = await start_replica(), await start_replica()
    user = someone()
    async with staying.broadcaster.subscribe(user) as queue:
        batch = [note(user) for _ in range(50)]
        for notification in batch:
            stopping.push.publish(notification)
        await stopping.push.stop()  # no wait before: the writer must flush on its own
        assert await receive_until(queue, batch[-1].id) == [n.id for n in batch]


async def test_reader_resumes_where_it_was_after_losing_its_connection(
    start_replica: Start, redis: Redis
) -> None:
    publisher, reading = await start_replica(), await start_replica()
    user = someone()
    name = await reading.reader.client_getname()
    async with reading.broadcaster.subscribe(user) as queue:
        first = note(user)
        publisher.push.publish(first)
        await receive_until(queue, first.id)
        killed = [c["id"] for c in await redis.client_list() if c.get("name") == name]
        assert killed
        for client_id in killed:
            await redis.client_kill_filter(_id=client_id)
        meanwhile = [note(user) for _ in range(5)]
        for notification in meanwhile:
            publisher.push.publish(notification)
        assert await receive_until(queue, meanwhile[-1].id) == [n.id for n in meanwhile]
