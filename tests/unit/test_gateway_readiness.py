"""The gateway's readiness is its own: a service that is down is reported, not required.

On Kubernetes a not-ready gateway pod leaves its Service; if one restarting backend made every
gateway unready, one pod's restart would take the whole API down instead of only its routes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from grpc_health.v1 import health_pb2

from pinstack_common.grpc.server import GrpcServer
from pinstack_common.observability.metrics import UPSTREAM_SERVING
from pinstack_devinfra.ports import free_port
from pinstack_gateway.app import ReadinessCheck, create_app
from pinstack_gateway.settings import GatewaySettings
from pinstack_gateway.upstreams import Upstreams


@pytest.fixture
async def user_server() -> AsyncIterator[GrpcServer]:
    server = GrpcServer(
        component="user",
        service_names=[],
        registrations=[],
        host="127.0.0.1",
        port=0,
        internal_token="t",
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=0)


@pytest.fixture
async def upstreams(user_server: GrpcServer) -> AsyncIterator[Upstreams]:
    """Only the user service runs; nothing listens at the others' addresses."""
    nobody = f"127.0.0.1:{free_port()}"
    settings = GatewaySettings(
        user_addr=user_server.address,
        auth_addr=nobody,
        post_addr=nobody,
        relation_addr=nobody,
        notification_addr=nobody,
        internal_token="t",
    )
    opened = Upstreams.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


def _client(upstreams: Upstreams, checks: list[ReadinessCheck] | None = None) -> httpx.AsyncClient:
    settings = GatewaySettings(internal_token="t")
    app = create_app(settings=settings, upstreams=upstreams, readiness=checks)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_ready_while_services_are_down_and_their_health_is_reported(
    upstreams: Upstreams, user_server: GrpcServer
) -> None:
    async with _client(upstreams) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "services": {
                "auth": "unavailable",
                "user": "serving",
                "post": "unavailable",
                "relation": "unavailable",
                "notification": "unavailable",
            },
        }
        assert UPSTREAM_SERVING.labels("user")._value.get() == 1
        assert UPSTREAM_SERVING.labels("post")._value.get() == 0

        # A draining service answers NOT_SERVING: reported, the gateway stays ready.
        await user_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        draining = await client.get("/readyz")
        assert draining.status_code == 200
        assert draining.json()["services"]["user"] == "not_serving"
        assert UPSTREAM_SERVING.labels("user")._value.get() == 0

        # Requests to a service that is down fail fast with the contract's error.
        started = time.monotonic()
        post = await client.get("/api/v1/posts/1")
        assert post.status_code == 503
        assert post.json() == {"status": 503, "message": "external service unavailable"}
        assert time.monotonic() - started < 2


async def test_not_ready_when_a_check_of_its_own_fails(upstreams: Upstreams) -> None:
    async def broken() -> None:
        raise ConnectionError("own dependency gone")

    async with _client(upstreams, [broken]) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": 503, "message": "not ready: ConnectionError"}
