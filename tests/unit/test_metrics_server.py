"""The standalone ``/metrics`` server a gRPC service runs in distributed mode."""

from __future__ import annotations

import httpx

from pinstack_auth.metrics import REGISTRATIONS
from pinstack_common.observability.metrics_server import MetricsServer, metrics_server
from pinstack_common.settings import ServiceSettings


async def test_serves_every_pinstack_metric_and_stops() -> None:
    server = MetricsServer(port=0)
    await server.start()
    try:
        REGISTRATIONS.inc(0)  # touched, so the family is there whatever ran before
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        assert response.status_code == 200
        assert "pinstack_registrations_total" in response.text
        assert "pinstack_grpc_server_requests_total" in response.text
    finally:
        await server.stop()
    await server.stop()  # idempotent


def test_off_unless_a_port_is_configured() -> None:
    assert metrics_server(ServiceSettings(metrics_port=0, internal_token="t")) is None
    settings = ServiceSettings(metrics_port=9090, grpc_host="0.0.0.0", internal_token="t")
    enabled = metrics_server(settings)
    assert isinstance(enabled, MetricsServer)
