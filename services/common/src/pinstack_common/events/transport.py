"""The event transport port, and the in-process adapter that ``make run`` uses.

A transport publishes :class:`~.envelope.Record` batches durably and delivers records to
consumer groups. The contract both adapters keep (and the domain code relies on):

- ``publish`` returns only once every record is stored (Kafka: acknowledged by all in-sync
  replicas); it raises :class:`PublishError` otherwise, and the caller retries.
- Records of one key go to one partition, in publication order.
- Each group gets every record at least once. A record's offset is committed only after the
  group's handler returned; if the handler raises, the same record is delivered again (after a
  short pause) and nothing after it on that partition overtakes it.
- Stopping a subscriber lets the handler in flight finish and commits its offset.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from pinstack_common.events.envelope import Record
from pinstack_common.observability.metrics import CONSUMER_LAG

__all__ = [
    "EventTransport",
    "InProcessTransport",
    "PublishError",
    "RecordHandler",
    "Subscriber",
    "partition_for",
]

log = structlog.get_logger(__name__)

RecordHandler = Callable[[Record], Awaitable[None]]


class PublishError(RuntimeError):
    """Some records of a batch were not stored; the whole batch may be retried."""


class Subscriber(Protocol):
    """One consumer group member: a lifecycle component."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class EventTransport(Protocol):
    """The port. ``start`` before publishing; ``stop`` flushes and closes the producer."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, records: Sequence[Record]) -> None: ...

    def subscriber(
        self, *, group: str, topics: Sequence[str], handler: RecordHandler, component: str
    ) -> Subscriber: ...


def partition_for(key: bytes | None, partitions: int) -> int:
    """A stable key → partition map (the in-process bus's own; Kafka uses its partitioner)."""
    return zlib.crc32(key or b"") % partitions


# --------------------------------------------------------------------------- in-process


@dataclass
class _Partition:
    log: list[Record] = field(default_factory=list)
    base: int = 0  # offset of log[0]: the log is trimmed once every group has passed it
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def end(self) -> int:
        return self.base + len(self.log)


class InProcessTransport:
    """An asyncio bus with Kafka's semantics, for one process (``make run``, unit tests).

    Topics are created on first use with ``partitions`` partitions; records live in memory and
    are trimmed once every known group has committed past them, and in any case beyond
    ``retention`` records per partition (Kafka's retention, in records: a topic nobody consumes
    in this process must not grow without bound). Each group keeps committed
    offsets per partition, so a subscriber stopped and started again resumes where its group
    stopped, and a handler failure means redelivery of the same record.

    Memory does not survive a crash, so "stored" cannot mean "in the log" when the outbox relay
    marks rows published on the strength of ``publish``. With ``ack_when_handled`` (what
    ``make run`` uses) ``publish`` returns only once every group subscribed to a record's topic
    has handled it — the outbox row is the durable copy until then, and a kill -9 at any moment
    leaves it unpublished for the next run's relay (consumers dedupe the replay). In that mode
    publishes also wait for :meth:`open`, called once every consumer of the process subscribed,
    so no record is acknowledged before the groups that must handle it exist; a group that stops
    (or :meth:`close`, or ``ack_timeout``) fails the publishes waiting for it with
    :class:`PublishError`, and the relay keeps those rows for later.
    """

    name = "event-transport"

    def __init__(
        self,
        *,
        partitions: int = 3,
        redelivery_delay: float = 0.1,
        retention: int = 100_000,
        ack_when_handled: bool = False,
        ack_timeout: float = 30.0,
    ) -> None:
        self._partitions = partitions
        self._retention = retention
        self._redelivery_delay = redelivery_delay
        self._ack_when_handled = ack_when_handled
        self._ack_timeout = ack_timeout
        self._topics: dict[str, list[_Partition]] = {}
        # group -> (topic, partition) -> committed offset (next record to handle)
        self._committed: dict[str, dict[tuple[str, int], int]] = {}
        self._subscriptions: dict[str, frozenset[str]] = {}  # group -> topics, once subscribed
        self._active_groups: set[str] = set()
        self._state = "held" if ack_when_handled else "open"
        # Publishes waiting for a commit, a group leaving, open() or close().
        self._waiters: set[asyncio.Future[None]] = set()

    def open(self) -> None:
        """Let publishes through: every group of the process has subscribed."""
        if self._state == "held":
            self._state = "open"
            self._wake()

    def close(self) -> None:
        """Fail waiting and later publishes: shutdown began; the outbox keeps the rows."""
        self._state = "closed"
        self._wake()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _topic(self, topic: str) -> list[_Partition]:
        if topic not in self._topics:
            self._topics[topic] = [_Partition() for _ in range(self._partitions)]
        return self._topics[topic]

    async def publish(self, records: Sequence[Record]) -> None:
        if self._ack_when_handled:
            await self._until(lambda: self._state != "held", "the bus to open")
        if self._state == "closed":
            raise PublishError("the in-process bus is closed")
        appended: list[Record] = []
        for record in records:
            partitions = self._topic(record.topic)
            index = partition_for(record.key, len(partitions))
            partition = partitions[index]
            stored = Record(
                topic=record.topic, key=record.key, value=record.value,
                headers=record.headers, partition=index, offset=partition.end,
            )  # fmt: skip
            partition.log.append(stored)
            appended.append(stored)
            partition.changed.set()
            if len(partition.log) > self._retention + 1024:
                self._trim(record.topic, index)
        if self._ack_when_handled:
            await self._until(lambda: self._handled(appended), "every group to handle the batch")

    def _handled(self, records: Sequence[Record]) -> bool:
        """True once every subscribed group passed ``records``; raises if one never will."""
        if self._state == "closed":
            raise PublishError("the in-process bus closed before delivery")
        for group, topics in self._subscriptions.items():
            pending = [r for r in records if r.topic in topics]
            if not pending:
                continue
            if group not in self._active_groups:
                raise PublishError(f"group {group!r} stopped before handling the batch")
            committed = self._committed[group]
            if any(committed.get((r.topic, r.partition), 0) <= r.offset for r in pending):
                return False
        return True

    async def _until(self, condition: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(self._ack_timeout):
                while not condition():
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._waiters.discard(waiter)
        except TimeoutError as error:
            raise PublishError(f"waited {self._ack_timeout}s for {what}") from error

    def _wake(self) -> None:
        """Make every waiting publish re-check its condition."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def records(self, topic: str) -> list[Record]:
        """Every retained record of ``topic`` (tests, debugging)."""
        return [r for p in self._topic(topic) for r in p.log]

    def subscriber(
        self, *, group: str, topics: Sequence[str], handler: RecordHandler, component: str
    ) -> Subscriber:
        return _InProcessSubscriber(
            transport=self, group=group, topics=list(topics), handler=handler, component=component
        )

    # Used by the subscriber -------------------------------------------------------------

    def _claim(self, group: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        if group in self._active_groups:
            # One member per group is all one process needs; two would split nothing.
            raise RuntimeError(f"in-process group {group!r} already has a running member")
        self._active_groups.add(group)
        self._subscriptions[group] = self._subscriptions.get(group, frozenset()) | set(topics)
        return self._committed.setdefault(group, {})

    def _release(self, group: str) -> None:
        self._active_groups.discard(group)
        self._wake()

    def _commit(self, group: str, topic: str, index: int, offset: int) -> None:
        self._committed[group][(topic, index)] = offset
        self._wake()
        self._trim(topic, index)

    def _trim(self, topic: str, index: int) -> None:
        partition = self._topic(topic)[index]
        offsets = [c.get((topic, index), 0) for c in self._committed.values()]
        low = max(min(offsets, default=partition.base), partition.end - self._retention)
        if low - partition.base > 1024:
            del partition.log[: low - partition.base]
            partition.base = low


class _InProcessSubscriber:
    def __init__(
        self,
        *,
        transport: InProcessTransport,
        group: str,
        topics: list[str],
        handler: RecordHandler,
        component: str,
    ) -> None:
        self.name = f"subscriber:{group}"
        self._transport = transport
        self._group = group
        self._topics = topics
        self._handler = handler
        self._component = component
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        committed = self._transport._claim(self._group, self._topics)
        self._stopping.clear()
        for topic in self._topics:
            for index in range(len(self._transport._topic(topic))):
                self._tasks.append(
                    asyncio.create_task(
                        self._run(topic, index, committed), name=f"{self.name}:{topic}[{index}]"
                    )
                )

    async def stop(self) -> None:
        self._stopping.set()
        for topic in self._topics:
            for partition in self._transport._topic(topic):
                partition.changed.set()
        # No cancel: each task finishes the record in flight, commits, and returns.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._transport._release(self._group)

    async def _run(self, topic: str, index: int, committed: dict[tuple[str, int], int]) -> None:
        partition = self._transport._topic(topic)[index]
        lag = CONSUMER_LAG.labels(self._component, topic)
        while not self._stopping.is_set():
            offset = max(committed.get((topic, index), 0), partition.base)
            if offset >= partition.end:
                partition.changed.clear()
                await partition.changed.wait()
                continue
            record = partition.log[offset - partition.base]
            try:
                await self._handler(record)
            except Exception:
                # At-least-once: the record stays uncommitted and comes back after a pause.
                log.warning("handler failed; redelivering", topic=topic, offset=offset,
                            exc_info=True)  # fmt: skip
                stop = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait([stop], timeout=self._transport._redelivery_delay)
                stop.cancel()
                continue
            self._transport._commit(self._group, topic, index, offset + 1)
            lag.set(self._lag(topic, committed))

    def _lag(self, topic: str, committed: dict[tuple[str, int], int]) -> int:
        partitions = self._transport._topic(topic)
        return sum(
            p.end - max(committed.get((topic, i), 0), p.base) for i, p in enumerate(partitions)
        )
