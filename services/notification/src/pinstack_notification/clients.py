"""The notification service's view of the user service: does a recipient exist?"""

from __future__ import annotations

from typing import Protocol

import grpc

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.grpc_client import domain_error

__all__ = ["GrpcUserDirectory", "UserDirectory"]


class UserDirectory(Protocol):
    async def exists(self, user_id: int) -> bool: ...


class GrpcUserDirectory:
    def __init__(self, *, stub: user_pb2_grpc.UserServiceAsyncStub) -> None:
        self._stub = stub

    async def exists(self, user_id: int) -> bool:
        try:
            await self._stub.GetUser(user_pb2.GetUserRequest(id=user_id))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise domain_error(error) from error
        return True
