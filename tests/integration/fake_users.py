"""A stand-in user service on a real gRPC server (the platform's ``GrpcServer``), for the tests
of services that call it: each test module brings its own servicer, this serves it."""

from __future__ import annotations

from functools import partial

from pinstack.user.v1 import user_pb2_grpc
from pinstack_common.grpc.server import GrpcServer

__all__ = ["start_user_server"]


async def start_user_server(
    servicer: user_pb2_grpc.UserServiceServicer, *, internal_token: str
) -> GrpcServer:
    """Started on an ephemeral loopback port (``.address``); the caller stops it."""
    server = GrpcServer(
        component="fake-user",
        service_names=["pinstack.user.v1.UserService"],
        registrations=[partial(user_pb2_grpc.add_UserServiceServicer_to_server, servicer)],
        host="127.0.0.1",
        port=0,
        internal_token=internal_token,
    )
    await server.start()
    return server
