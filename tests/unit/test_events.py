"""Unit tests of the event backbone's pure parts: envelopes, the in-process bus, relay ordering."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from pinstack_common.events import (
    Envelope,
    InProcessTransport,
    MalformedEventError,
    PublishError,
    Record,
    dead_letter_topic,
    topic_for,
)
from pinstack_common.events.envelope import EVENT_ID_HEADER, EVENT_TYPE_HEADER, capture_context
from pinstack_common.events.relay import _in_order_prefix
from tests.polling import eventually

TOPIC = "pinstack.test.events.v1"


def record(key: str, value: str) -> Record:
    return Record(topic=TOPIC, key=key.encode(), value=value.encode())


# -- envelope ----------------------------------------------------------------------------------


def test_topic_names() -> None:
    assert topic_for("user") == "pinstack.user.events.v1"
    assert dead_letter_topic("pinstack.user.events.v1") == "pinstack.user.events.v1.dlq"


def test_envelope_round_trips_through_a_record() -> None:
    envelope = Envelope(
        event_id=uuid.uuid4(),
        topic=TOPIC,
        key="42",
        event_type="pinstack.user.v1.UserDeleted",
        payload=b"\x08\x2a",
        context={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "x-request-id": "r1"},
    )
    rec = envelope.to_record()
    assert rec.key == b"42"
    assert rec.header(EVENT_ID_HEADER) == str(envelope.event_id)
    assert rec.header(EVENT_TYPE_HEADER) == "pinstack.user.v1.UserDeleted"
    assert rec.header("traceparent") == envelope.context["traceparent"]
    assert Envelope.from_record(rec) == envelope


@pytest.mark.parametrize(
    "headers",
    [
        (),
        ((EVENT_TYPE_HEADER, b"x.Y"),),
        ((EVENT_ID_HEADER, b"not-a-uuid"), (EVENT_TYPE_HEADER, b"x.Y")),
        ((EVENT_ID_HEADER, str(uuid.uuid4()).encode()),),
    ],
)
def test_records_without_a_usable_envelope_are_malformed(
    headers: tuple[tuple[str, bytes], ...],
) -> None:
    with pytest.raises(MalformedEventError):
        Envelope.from_record(Record(topic=TOPIC, key=b"k", value=b"", headers=headers))


def test_capture_context_carries_the_trace_and_the_request_id() -> None:
    tracer = TracerProvider().get_tracer("test")
    with (
        structlog.contextvars.bound_contextvars(request_id="req-123"),
        tracer.start_as_current_span("request") as span,
    ):
        context = capture_context()
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert context["traceparent"].split("-")[1] == trace_id
    assert context["x-request-id"] == "req-123"


# -- relay ordering ----------------------------------------------------------------------------


def test_relay_publishes_only_the_in_order_prefix_of_each_key() -> None:
    rows = [SimpleNamespace(key=k, seq=s) for k, s in [("a", 1), ("b", 3), ("a", 4), ("c", 6)]]
    # "b" has an older unpublished row (2) another relay holds; "c" a newer foreign one (7).
    pending = {"a": [1, 4], "b": [2, 3], "c": [6, 7]}
    ready = _in_order_prefix(rows, pending)
    assert [(r.key, r.seq) for r in ready] == [("a", 1), ("a", 4), ("c", 6)]


def test_relay_stops_a_key_at_a_gap() -> None:
    rows = [SimpleNamespace(key="a", seq=s) for s in (1, 3)]
    assert [r.seq for r in _in_order_prefix(rows, {"a": [1, 2, 3]})] == [1]


# -- the in-process bus ------------------------------------------------------------------------


async def test_every_group_gets_every_record_in_key_order() -> None:
    bus = InProcessTransport(partitions=3)
    seen: dict[str, list[tuple[str, str]]] = {"g1": [], "g2": []}

    def collector(group: str):  # type: ignore[no-untyped-def]
        async def handle(rec: Record) -> None:
            seen[group].append(((rec.key or b"").decode(), (rec.value or b"").decode()))

        return handle

    subs = [
        bus.subscriber(group=g, topics=[TOPIC], handler=collector(g), component="t") for g in seen
    ]
    for sub in subs:
        await sub.start()
    await bus.publish([record(k, f"{k}{i}") for i in range(20) for k in ("a", "b", "c", "d")])
    await eventually(lambda: all(len(v) == 80 for v in seen.values()))
    for events in seen.values():
        for key in "abcd":
            assert [v for k, v in events if k == key] == [f"{key}{i}" for i in range(20)]
    for sub in subs:
        await sub.stop()


async def test_failed_handler_gets_the_same_record_again_and_nothing_overtakes_it() -> None:
    bus = InProcessTransport(partitions=1, redelivery_delay=0.01)
    handled: list[str] = []
    failures = {"x1": 2}

    async def handle(rec: Record) -> None:
        value = (rec.value or b"").decode()
        if failures.get(value, 0) > 0:
            failures[value] -= 1
            raise RuntimeError("transient")
        handled.append(value)

    sub = bus.subscriber(group="g", topics=[TOPIC], handler=handle, component="t")
    await sub.start()
    await bus.publish([record("k", "x0"), record("k", "x1"), record("k", "x2")])
    await eventually(lambda: len(handled) == 3)
    assert handled == ["x0", "x1", "x2"]
    await sub.stop()


async def test_a_restarted_member_resumes_at_the_committed_offset() -> None:
    bus = InProcessTransport(partitions=2)
    handled: list[str] = []

    async def handle(rec: Record) -> None:
        handled.append((rec.value or b"").decode())

    sub = bus.subscriber(group="g", topics=[TOPIC], handler=handle, component="t")
    await sub.start()
    await bus.publish([record("a", "1"), record("b", "2")])
    await eventually(lambda: len(handled) == 2)
    await sub.stop()
    await bus.publish([record("a", "3"), record("b", "4")])  # while nobody listens
    again = bus.subscriber(group="g", topics=[TOPIC], handler=handle, component="t")
    await again.start()
    await eventually(lambda: len(handled) == 4)
    assert sorted(handled) == ["1", "2", "3", "4"]
    await again.stop()


async def test_a_new_group_starts_from_the_beginning() -> None:
    bus = InProcessTransport()
    await bus.publish([record("a", "early")])
    handled: list[str] = []

    async def handle(rec: Record) -> None:
        handled.append((rec.value or b"").decode())

    sub = bus.subscriber(group="late", topics=[TOPIC], handler=handle, component="t")
    await sub.start()
    await eventually(lambda: handled, what="the early record")
    await sub.stop()
    assert handled == ["early"]


async def test_stop_lets_the_handler_in_flight_finish_and_commit() -> None:
    bus = InProcessTransport(partitions=1)
    started, release = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    async def slow(rec: Record) -> None:
        started.set()
        await release.wait()
        handled.append((rec.value or b"").decode())

    sub = bus.subscriber(group="g", topics=[TOPIC], handler=slow, component="t")
    await sub.start()
    await bus.publish([record("k", "v")])
    await started.wait()
    stopping = asyncio.create_task(sub.stop())
    release.set()
    # A stop() that cancelled the handler, or returned without waiting for it, leaves the
    # handler unfinished here: awaiting a finished task does not yield to the loop.
    await stopping
    assert handled == ["v"]

    # Committed: the next member of the group does not see it again.
    again_seen: list[str] = []

    async def record_it(rec: Record) -> None:
        again_seen.append((rec.value or b"").decode())

    again = bus.subscriber(group="g", topics=[TOPIC], handler=record_it, component="t")
    await again.start()
    # Same key, same partition: a redelivery of "v" would arrive before this marker.
    await bus.publish([record("k", "marker")])
    await eventually(lambda: again_seen)
    await again.stop()
    assert again_seen == ["marker"]


async def test_one_member_per_group() -> None:
    bus = InProcessTransport()

    async def handle(rec: Record) -> None:
        return None

    first = bus.subscriber(group="g", topics=[TOPIC], handler=handle, component="t")
    await first.start()
    with pytest.raises(RuntimeError, match="already has a running member"):
        await bus.subscriber(group="g", topics=[TOPIC], handler=handle, component="t").start()
    await first.stop()


async def test_the_log_is_trimmed_once_every_group_passed_it() -> None:
    bus = InProcessTransport(partitions=1)
    count = 0

    async def handle(rec: Record) -> None:
        nonlocal count
        count += 1

    sub = bus.subscriber(group="g", topics=[TOPIC], handler=handle, component="t")
    await sub.start()
    await bus.publish([record("k", str(i)) for i in range(3000)])
    await eventually(lambda: count == 3000)
    await sub.stop()
    assert len(bus.records(TOPIC)) < 1100


async def test_retention_bounds_a_topic_nobody_consumes() -> None:
    bus = InProcessTransport(partitions=1, retention=100)
    await bus.publish([record("k", str(i)) for i in range(3000)])
    kept = bus.records(TOPIC)
    assert len(kept) < 100 + 1100
    assert kept[-1].value == b"2999"
    assert kept[-1].offset == 2999


# -- in-process bus, acknowledging only what was handled (``make run``) ------------------------


async def test_ack_when_handled_holds_publishes_until_the_bus_opens() -> None:
    bus = InProcessTransport(ack_when_handled=True)
    publish = asyncio.create_task(bus.publish([record("k", "early")]))
    await asyncio.sleep(0)
    seen: list[bytes] = []

    async def handle(rec: Record) -> None:
        seen.append(rec.value or b"")

    member = bus.subscriber(group="g", topics=[TOPIC], handler=handle, component="t")
    await member.start()
    assert not publish.done()  # a consumer that subscribes late must not miss it
    bus.open()
    await asyncio.wait_for(publish, 5)
    assert seen == [b"early"]  # acknowledged only once handled
    await member.stop()


async def test_ack_when_handled_returns_only_after_every_group_handled() -> None:
    bus = InProcessTransport(ack_when_handled=True)
    release = asyncio.Event()
    fast: list[bytes] = []

    async def slow(rec: Record) -> None:
        await release.wait()

    async def quick(rec: Record) -> None:
        fast.append(rec.value or b"")

    members = [
        bus.subscriber(group="slow", topics=[TOPIC], handler=slow, component="t"),
        bus.subscriber(group="quick", topics=[TOPIC], handler=quick, component="t"),
    ]
    for member in members:
        await member.start()
    bus.open()
    publish = asyncio.create_task(bus.publish([record("a", "1"), record("b", "2")]))
    await eventually(lambda: len(fast) == 2)
    assert not publish.done()  # "quick" is done, "slow" is not: not yet acknowledged
    release.set()
    await asyncio.wait_for(publish, 5)
    await bus.publish([Record(topic="pinstack.other.v1", key=b"k", value=b"x")])  # nobody's
    for member in members:
        await member.stop()


async def test_ack_when_handled_fails_a_publish_whose_group_stopped_or_bus_closed() -> None:
    bus = InProcessTransport(ack_when_handled=True)
    started = asyncio.Event()

    async def never(rec: Record) -> None:
        started.set()
        raise RuntimeError("not today")  # redelivered until the member stops

    member = bus.subscriber(group="g", topics=[TOPIC], handler=never, component="t")
    await member.start()
    bus.open()
    publish = asyncio.create_task(bus.publish([record("k", "v")]))
    await asyncio.wait_for(started.wait(), 5)
    await member.stop()
    with pytest.raises(PublishError, match="stopped"):
        await asyncio.wait_for(publish, 5)  # the relay keeps the row: nothing acknowledged
    bus.close()
    with pytest.raises(PublishError, match="closed"):
        await bus.publish([record("k", "later")])


async def test_ack_when_handled_gives_up_after_the_ack_timeout() -> None:
    bus = InProcessTransport(ack_when_handled=True, ack_timeout=0.05)
    with pytest.raises(PublishError, match="to open"):
        await bus.publish([record("k", "v")])
