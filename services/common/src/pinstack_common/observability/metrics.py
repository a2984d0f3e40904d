"""The platform's Prometheus metrics: HTTP, gRPC, database, cache, outbox relay and consumers.

Each service owns its business counters in its own ``pinstack_<service>.metrics``. Metric
objects are process-wide by nature (one registry per process), so they live as module
constants; they do no I/O. Labels are bounded: a route template, never a raw path; a
component or method name, never an id. Dashboards and alerts are checked against these modules.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AUTHENTICATION",
    "AUTHORIZATION",
    "CACHE_REQUESTS",
    "CONSUMER_LAG",
    "DB_POOL_CONNECTIONS",
    "DB_QUERY_DURATION",
    "DEAD_LETTERS",
    "EVENTS_CONSUMED",
    "EVENTS_PUBLISHED",
    "GRPC_CLIENT_DURATION",
    "GRPC_CLIENT_REQUESTS",
    "GRPC_SERVER_DURATION",
    "GRPC_SERVER_REQUESTS",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "OUTBOX_BACKLOG",
    "OUTBOX_OLDEST_AGE",
    "PROXY_ERRORS",
    "PROXY_REQUESTS",
    "RATE_LIMIT_STORE_ERRORS",
    "UPSTREAM_SERVING",
    "WEBSOCKET_CONNECTIONS",
]

# Latency buckets tuned for an API whose SLO is p99 < 50 ms.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# Gateway (names from the original README).
HTTP_REQUESTS = Counter(
    "pinstack_http_requests_total", "HTTP requests.", ["method", "route", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "pinstack_http_request_duration_seconds", "HTTP request latency.", ["method", "route"],
    buckets=_BUCKETS,
)  # fmt: skip
GRPC_CLIENT_REQUESTS = Counter(
    "pinstack_grpc_client_requests_total", "Outgoing gRPC calls.", ["service", "method", "code"]
)
GRPC_CLIENT_DURATION = Histogram(
    "pinstack_grpc_client_request_duration_seconds", "Outgoing gRPC call latency.",
    ["service", "method"], buckets=_BUCKETS,
)  # fmt: skip
AUTHENTICATION = Counter(
    "pinstack_authentication_total", "Bearer token checks by result.", ["result"]
)
AUTHORIZATION = Counter(
    "pinstack_authorization_total", "Ownership decisions by result.", ["result"]
)
PROXY_REQUESTS = Counter(
    "pinstack_proxy_requests_total", "Requests the gateway proxied to a service.", ["service"]
)
PROXY_ERRORS = Counter(
    "pinstack_proxy_errors_total", "Proxied requests that failed.", ["service", "code"]
)
UPSTREAM_SERVING = Gauge(
    "pinstack_upstream_serving",
    "1 if the service answered the gateway's last health check (on each /readyz) SERVING, else 0.",
    ["service"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "pinstack_websocket_connections", "Open notification WebSocket connections."
)

# Every service.
GRPC_SERVER_REQUESTS = Counter(
    "pinstack_grpc_server_requests_total", "Handled RPCs.", ["component", "method", "code"]
)
GRPC_SERVER_DURATION = Histogram(
    "pinstack_grpc_server_request_duration_seconds", "RPC handling latency.",
    ["component", "method"], buckets=_BUCKETS,
)  # fmt: skip
DB_QUERY_DURATION = Histogram(
    "pinstack_db_query_duration_seconds", "SQL statement latency.", ["component"],
    buckets=_BUCKETS,
)  # fmt: skip
DB_POOL_CONNECTIONS = Gauge(
    "pinstack_db_pool_connections", "Database pool connections by state.", ["component", "state"]
)
CACHE_REQUESTS = Counter(
    "pinstack_cache_requests_total", "Cache lookups by result.", ["component", "result"]
)
RATE_LIMIT_STORE_ERRORS = Counter(
    "pinstack_rate_limit_store_errors_total",
    "Rate-limit checks that failed open: the counter store (Redis) was unreachable.",
    ["component"],
)
OUTBOX_BACKLOG = Gauge("pinstack_outbox_backlog", "Unpublished outbox events.", ["component"])
OUTBOX_OLDEST_AGE = Gauge(
    "pinstack_outbox_oldest_event_age_seconds", "Age of the oldest unpublished event.",
    ["component"],
)  # fmt: skip
EVENTS_PUBLISHED = Counter(
    "pinstack_events_published_total", "Events published.", ["component", "topic"]
)
EVENTS_CONSUMED = Counter(
    "pinstack_events_consumed_total", "Events handled by result.", ["component", "topic", "result"]
)
CONSUMER_LAG = Gauge(
    "pinstack_consumer_lag", "Messages behind the end of the topic.", ["component", "topic"]
)
DEAD_LETTERS = Counter(
    "pinstack_dead_letter_total", "Events parked on a dead-letter topic.", ["component", "topic"]
)
