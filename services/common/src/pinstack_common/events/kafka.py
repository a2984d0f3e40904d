"""The Kafka adapter of the event transport (confluent-kafka), and a topic helper for dev/tests.

confluent-kafka's calls that wait (``poll``, ``flush``, ``commit``, the admin futures) run in
threads, never on the event loop. The producer is the ordinary ``Producer`` (its asyncio
variant refuses headers, and our event id and trace context travel in headers) with idempotence
on and ``acks=all``: a retried send never duplicates or reorders a partition.

Each subscriber owns one ``Consumer`` and one thread. The thread polls, hands each record to
the async handler on the event loop and waits for it; only when the handler returned does it
commit that record's offset. A failed handler makes the thread seek back to the record, so it is
delivered again and nothing later on its partition overtakes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pinstack_common.events.envelope import Record
from pinstack_common.events.transport import PublishError, RecordHandler, Subscriber
from pinstack_common.observability.metrics import CONSUMER_LAG

__all__ = ["KafkaTransport", "ensure_topics", "record_from_message"]

log = structlog.get_logger(__name__)
# librdkafka's own log lines go through standard logging (so: JSON, with the component), not
# straight to stderr; they are served by the poll calls our threads make anyway.
_client_log = logging.getLogger("pinstack.kafka.client")


def record_from_message(message: Message) -> Record:
    """A consumed confluent-kafka message as a transport-neutral record."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple(
        (name, value if isinstance(value, bytes) else (value or "").encode())
        for name, value in pairs
    )
    partition, offset = message.partition(), message.offset()
    return Record(
        topic=message.topic() or "",
        key=message.key(),
        value=message.value(),
        headers=headers,
        partition=-1 if partition is None else partition,
        offset=-1 if offset is None else offset,
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    wait_seconds: float = 30.0,
    client_config: Mapping[str, str] | None = None,
) -> None:
    """Create ``topics`` unless they exist (dev and tests; in Kubernetes the operator does it).

    ``client_config``: the brokers' security (``ServiceSettings.kafka_client_config()``).
    """

    def create() -> None:
        # A broker that refuses the TLS handshake or the login never answers: the reason only
        # reaches the error callback, and the request's timeout would otherwise say nothing.
        problems: list[str] = []
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "error_cb": lambda error: problems.append(error.str()),
            **(client_config or {}),
        }
        admin = AdminClient(config)
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
             for t in topics],
            operation_timeout=wait_seconds, request_timeout=wait_seconds,
        )  # fmt: skip
        for topic, future in futures.items():
            try:
                future.result(timeout=wait_seconds)
            except (KafkaException, TimeoutError) as exc:
                if isinstance(exc, KafkaException) and (
                    exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    continue
                admin.poll(0)  # serves the error callback
                # librdkafka follows the cause with "all brokers down": keep every distinct one.
                causes = f" ({'; '.join(dict.fromkeys(problems))})" if problems else ""
                what = str(exc) or f"no answer within {wait_seconds:g}s"
                raise RuntimeError(f"cannot create topic {topic}: {what}{causes}") from exc

    if topics:
        await asyncio.to_thread(create)


class KafkaTransport:
    """Publishes records with one idempotent producer; makes one consumer per subscriber."""

    name = "event-transport"

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        client_id: str = "pinstack",
        delivery_timeout: float = 30.0,
        redelivery_delay: float = 0.5,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._delivery_timeout = delivery_timeout
        self._redelivery_delay = redelivery_delay
        self._extra = dict(extra_config or {})
        self._producer: Producer | None = None
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()

    async def start(self) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "client.id": self._client_id,
                "logger": _client_log,
                # Events are small and latency matters (follow → notification): no Nagle delay.
                "socket.nagle.disable": True,
                "enable.idempotence": True,
                "acks": "all",
                # A few ms of batching costs little latency and saves round trips under load.
                "linger.ms": 2,
                # librdkafka keeps retrying (reconnecting to a restarted broker) this long;
                # past it the relay gets an error and retries the batch itself.
                "message.timeout.ms": int(self._delivery_timeout * 1000),
                **self._extra,
            }
        )
        self._stopping.clear()
        self._poller = threading.Thread(
            target=self._poll_producer, name=f"{self._client_id}-producer", daemon=True
        )
        self._poller.start()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        self._stopping.set()
        if self._poller is not None:
            await asyncio.to_thread(self._poller.join)
            self._poller = None
        if producer is not None:
            remaining = await asyncio.to_thread(producer.flush, self._delivery_timeout)
            if remaining:
                log.warning("producer closed with undelivered records", remaining=remaining)

    def _poll_producer(self) -> None:
        # Serves delivery callbacks; they hop to the event loop with call_soon_threadsafe.
        while not self._stopping.is_set():
            producer = self._producer
            if producer is None:
                return
            producer.poll(0.1)

    async def publish(self, records: Sequence[Record]) -> None:
        producer = self._producer
        if producer is None:
            raise PublishError("the Kafka transport is not started")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in records]

        def settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(PublishError(str(error)))

        def produce_all() -> None:
            for record, future in zip(records, futures, strict=True):

                def delivered(
                    error: KafkaError | None, _msg: Any, future: asyncio.Future[None] = future
                ) -> None:
                    # A closed loop (RuntimeError) means nobody waits for this any more.
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(settle, future, error)

                while True:
                    try:
                        producer.produce(
                            record.topic, value=record.value, key=record.key,
                            headers=list(record.headers), on_delivery=delivered,
                        )  # fmt: skip
                        break
                    except BufferError:  # local queue full: let deliveries drain it
                        producer.poll(0.05)

        await asyncio.to_thread(produce_all)
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), self._delivery_timeout + 5
            )
        except TimeoutError as exc:
            raise PublishError("delivery not confirmed in time") from exc
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise PublishError(f"{len(errors)} of {len(records)} records failed: {errors[0]}")

    def subscriber(
        self, *, group: str, topics: Sequence[str], handler: RecordHandler, component: str
    ) -> Subscriber:
        return _KafkaSubscriber(
            config={
                "bootstrap.servers": self.bootstrap_servers,
                "client.id": f"{self._client_id}-{group}",
                "group.id": group,
                "logger": _client_log,
                "socket.nagle.disable": True,
                # Offsets are committed by hand, after the handler: at-least-once.
                "enable.auto.commit": False,
                # A new group starts from the beginning: events written before the consumer
                # first started (a fresh install) are not skipped.
                "auto.offset.reset": "earliest",
                **self._extra,
            },
            topics=list(topics),
            handler=handler,
            component=component,
            redelivery_delay=self._redelivery_delay,
        )


class _KafkaSubscriber:
    def __init__(
        self,
        *,
        config: dict[str, Any],
        topics: list[str],
        handler: RecordHandler,
        component: str,
        redelivery_delay: float,
    ) -> None:
        self.name = f"subscriber:{config['group.id']}"
        self._config = config
        self._topics = topics
        self._handler = handler
        self._component = component
        self._redelivery_delay = redelivery_delay
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        consumer = Consumer(self._config)
        consumer.subscribe(self._topics)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, args=(consumer,), name=self.name, daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            # Joined off the loop: the thread may be waiting for its handler to run on it.
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _run(self, consumer: Consumer) -> None:
        try:
            self._poll_loop(consumer)
        except Exception:
            # Only a bug or a closed event loop gets here; say so instead of dying silently.
            log.exception("consumer thread stopped on an error", subscriber=self.name)
        finally:
            # Leaves the group at once, so the partitions move to another member without
            # waiting for a session timeout.
            consumer.close()

    def _poll_loop(self, consumer: Consumer) -> None:
        while not self._stopping.is_set():
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", error=str(error))
                continue
            self._deliver(consumer, message)

    def _deliver(self, consumer: Consumer, message: Message) -> None:
        assert self._loop is not None
        record = record_from_message(message)
        future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
            _call(self._handler, record), self._loop
        )
        try:
            future.result()
        except Exception:
            log.warning(
                "handler failed; redelivering",
                topic=record.topic, partition=record.partition, offset=record.offset,
                exc_info=True,
            )  # fmt: skip
            # Rewind so this record, and everything after it, is fetched again.
            with contextlib.suppress(KafkaException):  # revoked meanwhile: its new owner has it
                consumer.seek(TopicPartition(record.topic, record.partition, record.offset))
            self._stopping.wait(self._redelivery_delay)
            return
        try:
            consumer.commit(message=message, asynchronous=False)
        except KafkaException as exc:
            # The handler's effect is committed in its database (with the event id), so a
            # redelivery after a lost offset commit is deduplicated; later commits cover it.
            log.warning("offset commit failed", error=str(exc))
        self._report_lag(consumer, record)

    def _report_lag(self, consumer: Consumer, record: Record) -> None:
        try:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(record.topic, record.partition), cached=True
            )
        except KafkaException:
            return
        if high >= 0:
            CONSUMER_LAG.labels(self._component, record.topic).set(max(0, high - record.offset - 1))


async def _call(handler: RecordHandler, record: Record) -> None:
    # run_coroutine_threadsafe wants a coroutine; a handler is any awaitable-returning callable.
    await handler(record)
