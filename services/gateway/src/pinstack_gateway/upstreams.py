"""Channels and stubs to the five services, opened and closed with the gateway."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from fastapi import Request
from grpc_health.v1 import health_pb2

from pinstack.auth.v1 import auth_pb2_grpc
from pinstack.notification.v1 import notification_pb2_grpc
from pinstack.post.v1 import post_pb2_grpc
from pinstack.relation.v1 import relation_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack_common.grpc.client import fetch_jwks, health_check, open_channel
from pinstack_common.observability.metrics import PROXY_REQUESTS, UPSTREAM_SERVING
from pinstack_gateway.settings import GatewaySettings

__all__ = ["SERVING", "Upstreams", "proxy"]

SERVING = "serving"


@dataclass
class Upstreams:
    auth: auth_pb2_grpc.AuthServiceAsyncStub
    user: user_pb2_grpc.UserServiceAsyncStub
    post: post_pb2_grpc.PostServiceAsyncStub
    relation: relation_pb2_grpc.RelationServiceAsyncStub
    notification: notification_pb2_grpc.NotificationServiceAsyncStub
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: GatewaySettings) -> Upstreams:
        token = settings.internal_token.get_secret_value()
        channels = {
            name: open_channel(
                address=address,
                service=name,
                internal_token=token,
                timeout=settings.rpc_timeout_seconds,
            )
            for name, address in (
                ("auth", settings.auth_addr),
                ("user", settings.user_addr),
                ("post", settings.post_addr),
                ("relation", settings.relation_addr),
                ("notification", settings.notification_addr),
            )
        }
        return cls(
            auth=auth_pb2_grpc.AuthServiceStub(channels["auth"]),
            user=user_pb2_grpc.UserServiceStub(channels["user"]),
            post=post_pb2_grpc.PostServiceStub(channels["post"]),
            relation=relation_pb2_grpc.RelationServiceStub(channels["relation"]),
            notification=notification_pb2_grpc.NotificationServiceStub(channels["notification"]),
            channels=channels,
        )

    async def jwks(self) -> str:
        return await fetch_jwks(self.auth)

    async def health(self, *, deadline_seconds: float = 1.0) -> dict[str, str]:
        """Each service's gRPC health answer (``serving``, ``not_serving``, ...), or the code the
        check failed with (``unavailable``, ``deadline_exceeded``); sets ``UPSTREAM_SERVING``."""

        async def check(channel: grpc.aio.Channel) -> str:
            try:
                reply = await health_check(channel)(
                    health_pb2.HealthCheckRequest(), timeout=deadline_seconds
                )
            except grpc.aio.AioRpcError as failure:
                return str(failure.code().name).lower()
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)).lower()

        names = list(self.channels)
        answers = await asyncio.gather(*(check(self.channels[name]) for name in names))
        for name, answer in zip(names, answers, strict=True):
            UPSTREAM_SERVING.labels(name).set(1 if answer == SERVING else 0)
        return dict(zip(names, answers, strict=True))

    async def close(self) -> None:
        for channel in reversed(list(self.channels.values())):
            await channel.close()


def proxy(request: Request, service: str) -> Upstreams:
    """The upstreams, with this request counted as proxied to ``service``.

    The service name also labels the error counter if the call fails (see ``errors.py``).
    """
    request.scope["pinstack.upstream"] = service
    PROXY_REQUESTS.labels(service).inc()
    # Starlette types ``request.app`` as Any: the one Any this module admits (app.py stores it).
    upstreams: Upstreams = request.app.state.upstreams  # type: ignore[misc]
    return upstreams
