"""The push path across replicas: one Redis stream that every notification replica reads.

With N notification replicas and M gateway replicas, a WebSocket's gRPC stream lands on one
notification replica (the gateway's channel picks it), while the notification may be created on
any replica. So creation and delivery are decoupled through Redis:

- **Publish.** Right after the transaction that created a notification commits, the creating
  replica hands it to :meth:`RedisPush.publish` (non-blocking; the after-commit hook cannot
  await). A single writer task ``XADD``\\ s it to the stream ``pinstack:notification:push``
  (``MAXLEN ~ push_stream_maxlen``), batching what piled up, in creation order.
- **Deliver.** Every replica, the creating one included, runs one reader task that
  ``XREAD BLOCK``\\ s the stream from where it last was and hands each entry whose recipient has
  a live stream here to the local :class:`NotificationBroadcaster`. The creating path never
  delivers locally, so each stream gets each notification once.

Why a stream and not pub/sub: the reader keeps its position (the last entry id), so a dropped
Redis connection is resumed from there without losing what was published meanwhile, and the
position is taken (``XREVRANGE ... COUNT 1``) before the gRPC server serves, so a stream that
was told it is subscribed misses nothing created afterwards. Entries carry the recipient id in a
field of their own: a replica skips other users' entries without decoding them.

Exactly once: entry ids only grow and the reader never reads one twice. A publish that failed
is retried, and a retry after a lost reply can append an entry twice; the reader remembers the
last ``remember`` notification ids and drops such a repeat.

Failures are the push's, never the notification's: the feed is the source of truth. If Redis is
down, publishes are retried ``publish_attempts`` times and then dropped (logged, counted in
``pinstack_notification_pushes_total{result="dropped"}``), and the reader retries with backoff.

Shutdown (:meth:`stop`): the writer flushes what is pending (bounded by ``flush_timeout``),
then the reader stops. The reader is also told to stop by a flag, not only by cancellation: on
Python 3.11, redis-py's ``asyncio.wait_for`` around a socket write can swallow a cancellation,
and a reader that lost it would otherwise block on ``XREAD`` forever; with the flag it ends
after at most one ``BLOCK`` period. The component closes the Redis clients after that.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from pinstack.notification.v1.notification_pb2 import Notification
from pinstack_notification.broadcaster import NotificationBroadcaster
from pinstack_notification.metrics import NOTIFICATION_PUSHES

__all__ = ["DEFAULT_STREAM", "PushPublisher", "RedisPush", "open_reader"]

log = structlog.get_logger(__name__)

DEFAULT_STREAM = "pinstack:notification:push"
_BATCH = 256
_BLOCK_MS = 2_000
_MIN_DELAY = 0.05
_MAX_DELAY = 2.0
_START = b"0-0"  # before any entry: an empty or missing stream


class PushPublisher(Protocol):
    def publish(self, notification: Notification) -> None:
        """Queue ``notification`` for every live stream of its recipient; never blocks."""


def open_reader(
    url: str, *, block_ms: int = _BLOCK_MS, client_name: str = "pinstack-notification-push"
) -> Redis:
    """A client for the blocking reads: its socket timeout must outlast ``XREAD BLOCK``."""
    return Redis.from_url(
        url,
        socket_timeout=block_ms / 1000 + 5,
        socket_connect_timeout=2,
        client_name=client_name,  # who is blocking, in CLIENT LIST
    )


@dataclass(kw_only=True, eq=False)
class RedisPush:
    redis: Redis
    reader: Redis
    broadcaster: NotificationBroadcaster
    stream: str = DEFAULT_STREAM
    maxlen: int = 10_000
    block_ms: int = _BLOCK_MS
    pending_limit: int = 10_000
    publish_attempts: int = 3
    flush_timeout: float = 5.0
    remember: int = 4_096
    _pending: asyncio.Queue[Notification | None] = field(default_factory=asyncio.Queue, init=False)
    _seen: OrderedDict[int, None] = field(default_factory=OrderedDict, init=False)
    _position: bytes | None = field(default=None, init=False)
    _writer_task: asyncio.Task[None] | None = field(default=None, init=False)
    _reader_task: asyncio.Task[None] | None = field(default=None, init=False)
    _stopping: bool = field(default=False, init=False)
    _stop_reading: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def start(self) -> None:
        """Fix the read position now, before the caller serves streams, then run both tasks."""
        try:
            self._position = await self._tail()
        except (RedisError, OSError) as error:
            # Not fatal: the feed works without Redis; the reader takes the position later.
            log.warning("push stream unavailable at start", error=str(error))
        self._reader_task = asyncio.create_task(self._read(), name="notification-push-reader")
        self._writer_task = asyncio.create_task(self._write(), name="notification-push-writer")

    def publish(self, notification: Notification) -> None:
        if self._stopping or self._pending.qsize() >= self.pending_limit:
            NOTIFICATION_PUSHES.labels("dropped").inc()
            log.warning("push dropped", notification_id=notification.id, stopping=self._stopping)
            return
        self._pending.put_nowait(notification)

    async def stop(self) -> None:
        self._stopping = True
        if self._writer_task is not None:
            self._pending.put_nowait(None)
            done, _ = await asyncio.wait([self._writer_task], timeout=self.flush_timeout)
            if not done:
                log.warning("push flush timed out", pending=self._pending.qsize())
            await _end(self._writer_task, grace=1.0)
        self._stop_reading.set()
        if self._reader_task is not None:
            await _end(self._reader_task, grace=self.block_ms / 1000 + 1)

    # Writer ----------------------------------------------------------------------------------

    async def _write(self) -> None:
        while True:
            batch: list[Notification] = []
            item = await self._pending.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= _BATCH or self._pending.empty():
                    break
                item = self._pending.get_nowait()
            if batch:
                await self._append(batch)
            if item is None:
                return

    async def _append(self, batch: list[Notification]) -> None:
        attempts = max(1, self.publish_attempts)
        for attempt in range(1, attempts + 1):
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for notification in batch:
                        fields: dict[FieldT, EncodableT] = {
                            "u": notification.user_id,
                            "i": notification.id,
                            "n": notification.SerializeToString(),
                        }
                        pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
                    await pipe.execute()
            except (RedisError, OSError) as error:
                if attempt == attempts:
                    NOTIFICATION_PUSHES.labels("dropped").inc(len(batch))
                    log.warning("push publish failed; dropped", count=len(batch), error=str(error))
                    return
                await asyncio.sleep(_MIN_DELAY * 2**attempt)
            else:
                NOTIFICATION_PUSHES.labels("published").inc(len(batch))
                return

    # Reader ----------------------------------------------------------------------------------

    async def _tail(self) -> bytes:
        last: Any = await self.reader.xrevrange(self.stream, count=1)
        return bytes(last[0][0]) if last else _START

    async def _read(self) -> None:
        delay = _MIN_DELAY
        while not self._stop_reading.is_set():
            try:
                if self._position is None:
                    self._position = await self._tail()
                reply: Any = await self.reader.xread(
                    {self.stream: self._position}, count=_BATCH, block=self.block_ms
                )
            except (RedisError, OSError) as error:
                if self._stop_reading.is_set():
                    return
                log.warning("push stream unavailable; retrying", error=str(error), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
                continue
            delay = _MIN_DELAY
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    self._position = bytes(entry_id)
                    self._deliver(fields)

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        try:
            user_id, notification_id = int(fields[b"u"]), int(fields[b"i"])
            if self._repeated(notification_id):
                NOTIFICATION_PUSHES.labels("duplicate").inc()
                return
            if not self.broadcaster.has_subscribers(user_id):
                return
            notification = Notification.FromString(fields[b"n"])
        except (KeyError, ValueError, DecodeError) as error:
            log.warning("malformed push entry skipped", error=repr(error))
            return
        NOTIFICATION_PUSHES.labels("delivered").inc(self.broadcaster.deliver(notification))

    def _repeated(self, notification_id: int) -> bool:
        if notification_id in self._seen:
            return True
        self._seen[notification_id] = None
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        return False


async def _end(task: asyncio.Task[None], *, grace: float) -> None:
    """Cancel ``task`` unless it is done, and wait for it up to ``grace`` seconds.

    ``asyncio.wait``, not ``await task``: a cancellation of the caller itself must propagate.
    """
    if not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=grace)
    if not task.done():
        log.warning("push task did not stop in time", task=task.get_name())
    elif not task.cancelled() and (error := task.exception()) is not None:
        log.error("push task failed", task=task.get_name(), error=repr(error))
