"""OpenTelemetry tracing: one trace from the HTTP request through gRPC, SQL, Redis and events.

Off by default. :func:`configure_tracing` turns it on only when there is somewhere to send spans
(``PINSTACK_OTLP_ENDPOINT``, or an exporter a test passes in); until then nothing is patched and
no span is recorded, so an untraced process pays nothing.

When on, one process-wide ``TracerProvider`` is installed as the global one (the events package
and the logging processor use the global API) and these are instrumented:

- gRPC ``grpc.aio`` servers and channels, globally: the instrumentors patch ``grpc.aio.server``
  and ``grpc.aio.insecure_channel``, so servers and channels created *afterwards* are traced;
  health checks are left out (probes every few seconds would bury the real traces);
- Redis (``redis.asyncio`` included), globally, by patching the client classes;
- each service database, through :func:`instrument_engine` (a hook in
  ``pinstack_common.db.database``):
  ``SQLAlchemyInstrumentor().instrument(engine=...)`` only works for the first engine of a process
  (opentelemetry-python-contrib#3977), and ``pinstack up`` has five;
- the gateway's FastAPI app, through :func:`instrument_fastapi` (a hook in its ``create_app``);
- event publishing, through :func:`traced_transport`: a ``PRODUCER`` span per record, child of the
  context the outbox captured with the event, whose ``traceparent`` then replaces the captured one
  in the record headers, so the consumer's span is a child of the publish span.

Composition roots call :func:`configure_tracing` before they build components, and
:func:`shutdown` once the components stopped (it flushes what is buffered).
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from pinstack_common.observability.logging import current_request_id

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

    from pinstack_common.events.envelope import Record
    from pinstack_common.events.transport import EventTransport, RecordHandler, Subscriber

__all__ = [
    "REQUEST_ID_ATTRIBUTE",
    "TracedTransport",
    "configure_tracing",
    "force_flush",
    "instrument_engine",
    "instrument_fastapi",
    "shutdown",
    "traced_transport",
    "tracing_enabled",
]

log = structlog.get_logger(__name__)

REQUEST_ID_ATTRIBUTE = "pinstack.request_id"

_TRACER_NAME = "pinstack"
# Probes and scrapes: polled all day, never what anyone is looking for in a trace.
_UNTRACED_URLS = "/healthz,/readyz,/metrics"
_EVENT_ID_HEADER = "pinstack-event-id"  # envelope.EVENT_ID_HEADER; not imported (import cycle)


# --------------------------------------------------------------------------- sampling/export


class _Sampler(Sampler):
    """Parent-based; drops root CLIENT spans; drops everything once tracing is shut down.

    A CLIENT span without a parent is an outgoing call no traced operation asked for: the outbox
    relay's polling, backlog gauges, readiness pings, a connection being opened. Recording them
    would add a one-span trace every few seconds per service. Their children go with them.
    """

    def __init__(self) -> None:
        self._inner = ParentBased(root=ALWAYS_ON)

    def should_sample(  # noqa: PLR0917 - the signature is Sampler's
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not _state.enabled:
            return SamplingResult(Decision.DROP)
        orphan = not trace.get_current_span(parent_context).get_span_context().is_valid
        if orphan and kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "PinstackSampler"


class _RequestIds(SpanProcessor):
    """Tags spans started while a request id is bound with ``pinstack.request_id``.

    So a trace can be found from the id a client got in ``X-Request-ID`` (the logs carry both).
    The id is bound just inside each hop's server span, so server spans themselves lack it;
    their children (gRPC calls, SQL, Redis, the consumer's work) carry it.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        request_id = current_request_id()
        if request_id is not None:
            span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


class _Exporters(SpanProcessor):
    """The provider's only processor: fans out to the exporters of the current configuration.

    The global provider cannot be replaced once set, so a shutdown followed by a new
    :func:`configure_tracing` (tests do that) swaps what is behind this instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processors: list[SpanProcessor] = []
        self.exporters: list[SpanExporter] = []

    def add(self, exporter: SpanExporter) -> None:
        with self._lock:
            self.exporters.append(exporter)
            self._processors = [*self._processors, BatchSpanProcessor(exporter)]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            processor.on_end(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self._processors)

    def shutdown(self) -> None:
        with self._lock:
            processors, self._processors, self.exporters = self._processors, [], []
        for processor in processors:
            processor.shutdown()  # exports what is still queued, then closes the exporter


@dataclass
class _State:
    enabled: bool = False
    exporting_otlp: bool = False
    provider: TracerProvider | None = None
    exporters: _Exporters = field(default_factory=_Exporters)
    engines: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)


_state = _State()
_lock = threading.Lock()


# --------------------------------------------------------------------------- lifecycle


def configure_tracing(
    *, service_name: str, otlp_endpoint: str | None, exporter: SpanExporter | None = None
) -> bool:
    """Turn tracing on if there is an exporter (OTLP at ``otlp_endpoint``, or ``exporter``).

    Idempotent: a later call adds an exporter not attached yet and changes nothing else (the
    first call's ``service_name`` stays: one process, one resource). Returns whether tracing is
    on. Call it before building components: gRPC servers, channels and engines created earlier
    are not traced.
    """
    with _lock:
        added: list[SpanExporter] = []
        if otlp_endpoint and not _state.exporting_otlp:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            # Each export (retries included) gives up after 5 s: an unreachable collector must
            # not hold a stopping process past its grace period, nor a batch forever.
            added.append(OTLPSpanExporter(endpoint=otlp_endpoint, timeout=5))
        if exporter is not None and all(exporter is not e for e in _state.exporters.exporters):
            added.append(exporter)
        if not added:
            return _state.enabled
        if _state.provider is None:
            _state.provider = _install_provider(service_name)
        for new in added:
            _state.exporters.add(new)
        _state.exporting_otlp = _state.exporting_otlp or bool(otlp_endpoint)
        if not _state.enabled:
            _instrument_libraries(_state.provider)
            _state.enabled = True
            log.info("tracing enabled", service=service_name, otlp_endpoint=otlp_endpoint)
        return True


def tracing_enabled() -> bool:
    return _state.enabled


def force_flush(timeout_millis: int = 10_000) -> bool:
    """Export every span ended so far (tests read an in-memory exporter after this)."""
    return _state.exporters.force_flush(timeout_millis)


def shutdown() -> None:
    """Flush and close the exporters and undo the instrumentation; tracing is off afterwards."""
    with _lock:
        if not _state.enabled:
            return
        _state.enabled = False  # the sampler drops from here on: nothing reaches a closed exporter
        _state.exporting_otlp = False
        _uninstrument_libraries()
        _state.exporters.shutdown()


def _install_provider(service_name: str) -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}), sampler=_Sampler()
    )
    provider.add_span_processor(_RequestIds())
    provider.add_span_processor(_state.exporters)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        # Someone set one first; spans made through the global API (events) go there instead.
        log.warning("a global tracer provider was already set; event spans will not be exported")
    return provider


def _instrument_libraries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )
    from opentelemetry.instrumentation.grpc.filters import health_check, negate
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    GrpcAioInstrumentorServer(filter_=negate(health_check())).instrument(  # type: ignore[no-untyped-call]
        tracer_provider=provider
    )
    GrpcAioInstrumentorClient(filter_=negate(health_check())).instrument(  # type: ignore[no-untyped-call]
        tracer_provider=provider
    )
    RedisInstrumentor().instrument(tracer_provider=provider)


def _uninstrument_libraries() -> None:
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    GrpcAioInstrumentorServer().uninstrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().uninstrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().uninstrument()
    EngineTracer.remove_all_event_listeners()  # type: ignore[no-untyped-call]
    _state.engines = weakref.WeakSet()


# --------------------------------------------------------------------------- per-object hooks


def instrument_engine(engine: AsyncEngine) -> None:
    """Trace every statement of ``engine`` (a no-op while tracing is off)."""
    with _lock:
        if not _state.enabled or _state.provider is None or engine.sync_engine in _state.engines:
            return
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import get_meter

        # What SQLAlchemyInstrumentor().instrument(engine=...) builds, minus its once-per-process
        # guard. The connection-usage counter is required; with no meter provider it is a no-op.
        usage = get_meter(_TRACER_NAME).create_up_down_counter(
            "db.client.connections.usage", unit="connections"
        )
        tracer = _state.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        EngineTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]
        _state.engines.add(engine.sync_engine)


def instrument_fastapi(app: FastAPI) -> None:
    """Give each HTTP request a SERVER span named by its route template (no-op while off)."""
    if not _state.enabled:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_state.provider,
        excluded_urls=_UNTRACED_URLS,
        # The per-message ASGI receive/send spans double a trace's size and say nothing new.
        exclude_spans=["receive", "send"],
    )


# --------------------------------------------------------------------------- events


def traced_transport(transport: EventTransport) -> EventTransport:
    """``transport`` with a PRODUCER span per published record (unchanged while off)."""
    if not _state.enabled or isinstance(transport, TracedTransport):
        return transport
    return TracedTransport(transport)


class TracedTransport:
    """An :class:`~pinstack_common.events.transport.EventTransport` decorator.

    The span's parent is the span current at publish time if there is one (a consumer parking a
    record on a dead-letter topic), else the context captured in the record's headers when its
    outbox row was written (the relay publishes from its own task, long after the request).
    """

    def __init__(self, inner: EventTransport) -> None:
        self.inner = inner
        self.name = inner.name

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    def subscriber(
        self, *, group: str, topics: Sequence[str], handler: RecordHandler, component: str
    ) -> Subscriber:
        return self.inner.subscriber(
            group=group, topics=topics, handler=handler, component=component
        )

    async def publish(self, records: Sequence[Record]) -> None:
        tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=_state.provider)
        fields = propagate.get_global_textmap().fields
        current = trace.get_current_span().get_span_context().is_valid
        spans: list[trace.Span] = []
        traced: list[Record] = []
        for record in records:
            parent = None if current else propagate.extract(_carrier(record))
            span = tracer.start_span(
                f"{record.topic} publish",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": record.topic,
                    "messaging.message.id": record.header(_EVENT_ID_HEADER) or "",
                },
            )
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            headers = tuple((k, v) for k, v in record.headers if k not in fields)
            headers += tuple((k, v.encode()) for k, v in carrier.items())
            traced.append(dataclasses.replace(record, headers=headers))
            spans.append(span)
        try:
            await self.inner.publish(traced)
        except BaseException as failure:
            for span in spans:
                span.record_exception(failure)
                span.set_status(trace.StatusCode.ERROR, type(failure).__name__)
            raise
        finally:
            for span in spans:
                span.end()


def _carrier(record: Record) -> dict[str, str]:
    return {k: v.decode("utf-8", errors="replace") for k, v in record.headers}
