"""Channels and stubs to the five services, opened and closed with the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from fastapi import Request

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack.notification.v1 import notification_pb2_grpc
from pinstack.post.v1 import post_pb2_grpc
from pinstack.relation.v1 import relation_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack_common.errors import InvalidArgumentError
from pinstack_common.grpc_client import open_channel
from pinstack_common.metrics import PROXY_REQUESTS
from pinstack_gateway.settings import GatewaySettings

__all__ = ["Upstreams", "positive_id", "proxy"]


@dataclass
class Upstreams:
    auth: auth_pb2_grpc.AuthServiceStub
    user: user_pb2_grpc.UserServiceStub
    post: post_pb2_grpc.PostServiceStub
    relation: relation_pb2_grpc.RelationServiceStub
    notification: notification_pb2_grpc.NotificationServiceStub
    channels: list[grpc.aio.Channel] = field(default_factory=list)

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
            channels=list(channels.values()),
        )

    async def jwks(self) -> str:
        return str((await self.auth.GetJwks(auth_pb2.GetJwksRequest())).jwks_json)

    async def close(self) -> None:
        for channel in reversed(self.channels):
            await channel.close()


def proxy(request: Request, service: str) -> Upstreams:
    """The upstreams, with this request counted as proxied to ``service``.

    The service name also labels the error counter if the call fails (see ``errors.py``).
    """
    request.scope["pinstack.upstream"] = service
    PROXY_REQUESTS.labels(service).inc()
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


def positive_id(value: int) -> int:
    """Ids parse as integers (else ``invalid input``) and must be at least 1."""
    if value <= 0:
        raise InvalidArgumentError("validation failed")
    return value
