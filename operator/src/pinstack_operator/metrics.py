"""The operator's own Prometheus metrics, and the HTTP server for them and for ``/healthz``.

Per-stack series are derived from the status the operator writes (``status.phase`` and
``status.conditions``, as seen on the watch), not from the reconcile's internals, so they say
exactly what ``kubectl get pinstackstacks`` says:

- ``pinstack_operator_reconciles_total{trigger, result}`` (``result``: ``ready``, ``not_ready``,
  ``error``; ``trigger``: ``change``, ``resync``, ``child``, ``reclaim``)
- ``pinstack_operator_reconcile_errors_total{trigger, error}`` (the exception's type)
- ``pinstack_operator_reconcile_duration_seconds{trigger}`` (histogram)
- ``pinstack_operator_stacks{phase}``: stacks per ``status.phase``
- ``pinstack_operator_stack_condition{namespace, stack, type, status, reason}``: 1 per condition
- ``pinstack_operator_leader``: 1 while this replica acts (holds the leader Lease, or runs
  without leader election)

Each operator run has its own registry (tests run several operators in one process).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["PHASES", "HealthServer", "OperatorMetrics", "ReconcilePass"]

# Every phase the operator writes (``conditions.phase_for`` and reclaim); a phase with no stack
# is exported as 0, so ``pinstack_operator_stacks{phase="Degraded"} > 0`` never sees a gap.
PHASES = ("Provisioning", "Migrating", "Ready", "Degraded", "Deleting")
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_Key = tuple[str, str]  # namespace, name


class ReconcilePass:
    """One timed pass; the caller sets ``result`` from what the pass found."""

    def __init__(self) -> None:
        self.result = "ready"


class _StackCollector(Collector):
    """Per-stack series, built at scrape time from the statuses last seen."""

    def __init__(self, statuses: Callable[[], dict[_Key, Mapping[str, Any]]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[GaugeMetricFamily]:
        statuses = self._statuses()
        phases = GaugeMetricFamily(
            "pinstack_operator_stacks", "PinstackStacks by status.phase", labels=["phase"]
        )
        counts = dict.fromkeys(PHASES, 0)
        for status in statuses.values():
            phase = str(status.get("phase") or "Provisioning")
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            phases.add_metric([phase], count)
        conditions = GaugeMetricFamily(
            "pinstack_operator_stack_condition",
            "1 per condition of each PinstackStack, labelled with its status and reason",
            labels=["namespace", "stack", "type", "status", "reason"],
        )
        for (namespace, name), status in sorted(statuses.items()):
            for condition in status.get("conditions") or []:
                kind, state = str(condition.get("type")), str(condition.get("status"))
                reason = str(condition.get("reason", ""))
                conditions.add_metric([namespace, name, kind, state, reason], 1)
        return [phases, conditions]


class OperatorMetrics:
    """The metrics of one operator run, in their own registry."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._reconciles = Counter(
            "pinstack_operator_reconciles",
            "Reconcile passes by what started them and how they ended",
            ["trigger", "result"],
            registry=self.registry,
        )
        self._errors = Counter(
            "pinstack_operator_reconcile_errors",
            "Reconcile passes that raised, by exception type",
            ["trigger", "error"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "pinstack_operator_reconcile_duration_seconds",
            "Wall time of a reconcile pass",
            ["trigger"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.leader = Gauge(
            "pinstack_operator_leader",
            "1 while this replica runs the handlers (holds the leader Lease, or runs alone)",
            registry=self.registry,
        )
        self._lock = threading.Lock()  # the scrape runs in the server's thread
        self._statuses: dict[_Key, Mapping[str, Any]] = {}
        self.registry.register(_StackCollector(self._snapshot))

    def _snapshot(self) -> dict[_Key, Mapping[str, Any]]:
        with self._lock:
            return dict(self._statuses)

    @contextlib.contextmanager
    def reconcile(self, trigger: str) -> Iterator[ReconcilePass]:
        """Time and count one pass; an exception counts as ``error`` and propagates."""
        current = ReconcilePass()
        started = time.perf_counter()
        try:
            yield current
        except Exception as error:
            self._errors.labels(trigger, type(error).__name__).inc()
            current.result = "error"
            raise
        finally:
            self._duration.labels(trigger).observe(time.perf_counter() - started)
            self._reconciles.labels(trigger, current.result).inc()

    def observe_stack(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Record a stack's status as the watch delivered it (forget it once deleted)."""
        metadata = body.get("metadata") or {}
        key = (str(metadata.get("namespace")), str(metadata.get("name")))
        with self._lock:
            if deleted:
                self._statuses.pop(key, None)
            else:
                self._statuses[key] = dict(body.get("status") or {})

    def forget_stacks(self) -> None:
        """Drop every stack's series (this replica stopped watching: the leader exports them)."""
        with self._lock:
            self._statuses.clear()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes every few seconds: not worth a log line each."""


class HealthServer:
    """``/metrics`` (the run's registry) and ``/healthz`` on one port, served from a thread.

    ``/healthz`` answers 200 while ``healthy()`` is true: the operator's event loop beats a
    heartbeat, so a wedged loop fails the liveness probe whether this replica leads or waits.
    """

    def __init__(
        self, *, host: str, port: int, registry: CollectorRegistry, healthy: Callable[[], bool]
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._healthy = healthy
        self._server: WSGIServer = make_server(host, port, self._app, handler_class=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pinstack-operator-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = self._healthy()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain")])  # fmt: skip
            return [b"ok\n" if ok else b"event loop stalled\n"]
        return list(self._metrics_app(environ, start_response))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
