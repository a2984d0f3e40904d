"""Tracing end to end: one trace from an HTTP request to the consumer that creates the notification.

The whole embedded stack runs as ``pinstack up`` builds it, with tracing on and an in-memory
exporter. A follow through the gateway must come back as ONE trace::

    SERVER   POST /api/v1/relation/follow                     (the root: no parent)
      CLIENT   RelationService/Follow
        SERVER   RelationService/Follow
          CLIENT/SERVER  UserService/GetUser ... SQL SELECT users
          SQL      INSERT INTO follows, INSERT INTO outbox
          PRODUCER pinstack.relation.events.v1 publish       (the relay, later, another task)
            CONSUMER pinstack.relation.events.v1 process     (notification's consumer group)
              SQL      INSERT INTO processed_events, INSERT INTO notifications

A follow touches no Redis, so Redis is asserted on a login (rate-limit counters) the same way;
and a log line written inside a request carries the request id and that request's trace id.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import event
from sqlalchemy.engine import Engine

from pinstack_cli.embedded import EmbeddedStack
from pinstack_common.events import RELATION_EVENTS
from pinstack_common.lifecycle import start_all, stop_all
from pinstack_common.observability import telemetry
from pinstack_common.observability.logging import configure_logging
from tests.embedded import prepared_stack
from tests.polling import eventually

PASSWORD = "correct horse battery"


# -- fixtures ----------------------------------------------------------------------------------


class LogLines(logging.Handler):
    """Every log line of the process, rendered by the production formatter and parsed back."""

    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture(scope="module")
def log_lines() -> Iterator[LogLines]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging(level="INFO", fmt="json", component="test")
    capture = LogLines(root.handlers[0].formatter)
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.reset_defaults()


@pytest.fixture(scope="module")
def exporter(log_lines: LogLines) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    assert telemetry.configure_tracing(
        service_name="pinstack-test", otlp_endpoint=None, exporter=memory
    )
    try:
        yield memory
    finally:
        telemetry.shutdown()  # un-patches gRPC and Redis: later modules run untraced


@pytest.fixture(scope="module")
def embedded(
    tmp_path_factory: pytest.TempPathFactory, exporter: InMemorySpanExporter
) -> Iterator[EmbeddedStack]:
    # After configure_tracing: servers, channels and engines are instrumented as they are built.
    with prepared_stack(tmp_path_factory.mktemp("traced")) as stack:
        yield stack


@dataclass
class User:
    id: int
    username: str
    token: str


class Traced:
    def __init__(self, client: httpx.AsyncClient, exporter: InMemorySpanExporter) -> None:
        self.client = client
        self.exporter = exporter

    async def register(self, *, request_id: str | None = None) -> User:
        name = f"t{uuid.uuid4().hex[:10]}"
        response = await self.client.post(
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            headers={"X-Request-ID": request_id} if request_id else {},
        )
        assert response.status_code == 201, response.text
        me = await self.client.get(f"/api/v1/users/username/{name}")
        assert me.status_code == 200, me.text
        return User(
            id=me.json()["data"]["id"],
            username=name,
            token=response.json()["data"]["access_token"],
        )

    def spans(self) -> list[ReadableSpan]:
        assert telemetry.force_flush()
        return list(self.exporter.get_finished_spans())

    async def trace_of(
        self, route: str, *, until: str | None = None, within: float = 20.0
    ) -> Trace:
        """The one trace rooted at an HTTP span named ``route``, once it has a statement
        starting with ``until`` (events arrive after the response) and every span's parent has
        ended too (a span is exported when it ends, children before parents)."""

        def complete() -> Trace | None:
            spans = self.spans()
            roots = [s for s in spans if s.name == route and s.kind is SpanKind.SERVER]
            assert len(roots) <= 1, f"{len(roots)} traces for {route}"
            if roots:
                found = Trace.of(roots[0], spans)
                if found.settled() and (until is None or found.statements(until)):
                    return found
            return None

        return await eventually(complete, within=within, what=f"a complete trace for {route}")


@pytest.fixture(scope="module")
async def traced(embedded: EmbeddedStack, exporter: InMemorySpanExporter) -> AsyncIterator[Traced]:
    started = await start_all(embedded.build())
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{embedded.http_port}", timeout=10
        ) as client:
            yield Traced(client, exporter)
    finally:
        await stop_all(started)


@pytest.fixture
def fresh(traced: Traced) -> Traced:
    """The exporter emptied of earlier requests' spans (queued ones included)."""
    telemetry.force_flush()
    traced.exporter.clear()
    return traced


# -- the span tree -----------------------------------------------------------------------------


@dataclass
class Trace:
    root: ReadableSpan
    spans: list[ReadableSpan]

    @classmethod
    def of(cls, root: ReadableSpan, everything: list[ReadableSpan]) -> Trace:
        trace_id = root.context.trace_id
        return cls(root=root, spans=[s for s in everything if s.context.trace_id == trace_id])

    def settled(self) -> bool:
        ids = {s.context.span_id for s in self.spans}
        return all(s.parent is None or s.parent.span_id in ids for s in self.spans)

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans if s.parent and s.parent.span_id == span.context.span_id]

    def descendants(self, span: ReadableSpan) -> list[ReadableSpan]:
        found: list[ReadableSpan] = []
        frontier = [span]
        while frontier:
            nxt = [c for s in frontier for c in self.children(s)]
            found += nxt
            frontier = nxt
        return found

    def rpc(self, kind: SpanKind, full_method: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.kind is kind and s.name == full_method]

    def statements(self, prefix: str, among: list[ReadableSpan] | None = None) -> list[str]:
        return [
            statement
            for s in (self.spans if among is None else among)
            if (s.attributes or {}).get("db.system") == "postgresql"
            and isinstance(statement := (s.attributes or {}).get("db.statement"), str)
            and statement.startswith(prefix)
        ]

    def only(self, kind: SpanKind, name: str) -> ReadableSpan:
        matching = [s for s in self.spans if s.kind is kind and s.name == name]
        assert len(matching) == 1, f"{len(matching)} {kind.name} spans named {name}"
        return matching[0]


def rpc_pair(trace: Trace, full_method: str) -> tuple[ReadableSpan, ReadableSpan]:
    """The client span and the server span it caused (across the gRPC hop, via metadata)."""
    client = trace.only(SpanKind.CLIENT, full_method)
    server = trace.only(SpanKind.SERVER, full_method)
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    return client, server


# -- tests -------------------------------------------------------------------------------------


async def test_follow_is_one_trace_from_the_request_to_the_notification(fresh: Traced) -> None:
    alice = await fresh.register()
    bob = await fresh.register()
    response = await fresh.client.post(
        "/api/v1/relation/follow",
        json={"followee_id": bob.id},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert response.status_code == 200, response.text
    trace = await fresh.trace_of("POST /api/v1/relation/follow", until="INSERT INTO notifications")

    # The HTTP server span is the root; every other span of the trace hangs below it.
    assert trace.root.parent is None
    assert (trace.root.attributes or {}).get("http.route") == "/api/v1/relation/follow"
    assert {s.context.span_id for s in trace.descendants(trace.root)} == {
        s.context.span_id for s in trace.spans if s is not trace.root
    }

    # gRPC: gateway → relation, and relation → user, each a client span with its server child.
    follow_client, follow_server = rpc_pair(trace, "/pinstack.relation.v1.RelationService/Follow")
    assert follow_client.parent is not None
    assert follow_client.parent.span_id == trace.root.context.span_id
    _, get_user = rpc_pair(trace, "/pinstack.user.v1.UserService/GetUser")
    assert get_user in trace.descendants(follow_server)

    # SQL inside the services that ran it.
    assert trace.statements("SELECT", among=trace.descendants(get_user))
    in_relation = trace.descendants(follow_server)
    assert trace.statements("INSERT INTO follows", among=in_relation)
    assert trace.statements("INSERT INTO outbox", among=in_relation)

    # The event: published by the relay, continuing the request that wrote the outbox row.
    publish = trace.only(SpanKind.PRODUCER, f"{RELATION_EVENTS} publish")
    assert publish.parent is not None
    assert publish.parent.span_id == follow_server.context.span_id
    assert (publish.attributes or {}).get("messaging.message.id")

    # ... consumed by the notification service, as a child of the publish span ...
    consume = trace.only(SpanKind.CONSUMER, f"{RELATION_EVENTS} process")
    assert consume.parent is not None
    assert consume.parent.span_id == publish.context.span_id
    attributes = consume.attributes or {}
    assert "notification" in str(attributes.get("messaging.consumer.group.name"))
    assert attributes.get("messaging.message.id") == publish.attributes["messaging.message.id"]  # type: ignore[index]
    assert attributes.get("pinstack.event_type") == "pinstack.relation.v1.FollowCreated"

    # ... whose transaction records the event id and creates the notification.
    in_consumer = trace.descendants(consume)
    assert trace.statements("INSERT INTO processed_events", among=in_consumer)
    assert trace.statements("INSERT INTO notifications", among=in_consumer)


async def test_login_traces_redis_and_sql_under_the_request(fresh: Traced) -> None:
    user = await fresh.register()
    response = await fresh.client.post(
        "/api/v1/auth/login", json={"login": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    trace = await fresh.trace_of("POST /api/v1/auth/login")

    assert trace.root.parent is None
    client, server = rpc_pair(trace, "/pinstack.auth.v1.AuthService/Login")
    assert client.parent is not None
    assert client.parent.span_id == trace.root.context.span_id
    in_auth = trace.descendants(server)
    # Rate-limit counters live in Redis; the account and the new session in PostgreSQL.
    redis = [s for s in in_auth if (s.attributes or {}).get("db.system") == "redis"]
    assert redis, [s.name for s in in_auth]
    assert all(s.kind is SpanKind.CLIENT for s in redis)
    assert trace.statements("INSERT", among=in_auth)


async def test_a_log_line_inside_a_request_carries_request_id_and_trace_id(
    fresh: Traced, log_lines: LogLines
) -> None:
    request_id = f"trace-test-{uuid.uuid4().hex}"
    await fresh.register(request_id=request_id)
    trace = await fresh.trace_of("POST /api/v1/auth/register")

    # Written by the auth service, a gRPC hop away from the gateway that got the request id.
    lines = [
        line
        for line in log_lines.lines
        if line.get("event") == "user registered" and line.get("request_id") == request_id
    ]
    assert len(lines) == 1, log_lines.lines[-20:]
    line = lines[0]
    assert line["trace_id"] == format(trace.root.context.trace_id, "032x")
    _, register = rpc_pair(trace, "/pinstack.auth.v1.AuthService/Register")
    assert line["span_id"] == format(register.context.span_id, "016x")
    assert line["component"] == "auth"
    # ... and the trace can be found from the request id: spans inside a request are tagged.
    tagged = [
        s
        for s in trace.spans
        if (s.attributes or {}).get(telemetry.REQUEST_ID_ATTRIBUTE) == request_id
    ]
    assert register.context.span_id in {s.parent.span_id for s in tagged if s.parent}


async def test_health_probes_and_background_polling_start_no_traces(fresh: Traced) -> None:
    assert (await fresh.client.get("/healthz")).status_code == 200
    assert (await fresh.client.get("/readyz")).status_code == 200
    assert (await fresh.client.get("/metrics")).status_code == 200
    # Relays and gauges keep polling their databases meanwhile: wait until they have.
    statements: list[str] = []

    def executed(*args: object) -> None:
        statements.append(str(args[2]))  # (connection, cursor, statement, ...)

    event.listen(Engine, "after_cursor_execute", executed)
    try:
        await eventually(lambda: len(statements) >= 2, what="background statements")
    finally:
        event.remove(Engine, "after_cursor_execute", executed)
    spans = fresh.spans()
    assert not [s.name for s in spans if s.parent is None], "untraced work started a trace"
    assert not [s for s in spans if "grpc.health.v1.Health" in s.name]
