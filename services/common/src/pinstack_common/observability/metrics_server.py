"""``/metrics`` for a gRPC service in distributed mode: Prometheus' own HTTP server on its own port.

The gateway serves ``/metrics`` on its HTTP port and ``pinstack up`` has only the gateway's; a
service running alone (``pinstack serve <service>``, a Kubernetes pod) has no HTTP server, so it
starts this one on ``PINSTACK_METRICS_PORT`` (the chart's ``ports.metrics``). It is a lifecycle
component: started before the service, stopped after it, so the last scrape sees the drain.
"""

from __future__ import annotations

import asyncio
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from pinstack_common.settings import ServiceSettings

__all__ = ["MetricsServer", "metrics_server"]


class MetricsServer:
    """Serves ``registry`` (every ``pinstack_*`` metric of the process) on ``host:port``."""

    name = "metrics-server"

    def __init__(
        self, *, port: int, host: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
    ) -> None:
        self._port = port
        self._host = host
        self._registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (differs from the configured one only when that was 0, in tests)."""
        if self._server is None:
            raise RuntimeError("metrics server is not started")
        return int(self._server.server_port)

    async def start(self) -> None:
        # Binding is synchronous and quick; a taken port fails start-up loudly, as it should.
        self._server, self._thread = start_http_server(
            self._port, addr=self._host, registry=self._registry
        )

    async def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        # shutdown() waits for the serving loop to notice (up to its 0.5 s poll): off the loop.
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        if thread is not None:
            await asyncio.to_thread(thread.join, 5)


def metrics_server(settings: ServiceSettings) -> MetricsServer | None:
    """The component for ``settings.metrics_port``, or None when it is 0 (the default)."""
    if settings.metrics_port <= 0:
        return None
    # Reachable where the gRPC port is: all interfaces in a pod, loopback on a laptop.
    return MetricsServer(port=settings.metrics_port, host=settings.grpc_host)
