"""The gateway is ready only when every service answers its gRPC health check."""

from __future__ import annotations

from grpc_health.v1 import health_pb2

from pinstack_common.grpc_server import GrpcServer
from pinstack_devinfra.redis import free_port
from pinstack_gateway.settings import GatewaySettings
from pinstack_gateway.upstreams import Upstreams


async def test_services_that_do_not_answer_serving_are_named() -> None:
    server = GrpcServer(
        component="user",
        service_names=[],
        registrations=[],
        host="127.0.0.1",
        port=0,
        internal_token="t",
    )
    await server.start()
    nobody = f"127.0.0.1:{free_port()}"
    settings = GatewaySettings(
        user_addr=server.address,
        auth_addr=nobody,
        post_addr=nobody,
        relation_addr=nobody,
        notification_addr=nobody,
    )
    upstreams = Upstreams.open(settings)
    try:
        assert await upstreams.not_serving(deadline_seconds=0.5) == [
            "auth",
            "post",
            "relation",
            "notification",
        ]
        # A draining server reports NOT_SERVING: not ready either.
        await server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert "user" in await upstreams.not_serving(deadline_seconds=0.5)
    finally:
        await upstreams.close()
        await server.stop(grace=0)
