"""The notification service's view of the user service: does a recipient exist?"""

from __future__ import annotations

from typing import Protocol

import grpc

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.errors import UnavailableError

__all__ = ["GrpcUserDirectory", "UserDirectory"]


class UserDirectory(Protocol):
    async def exists(self, user_id: int) -> bool: ...


class GrpcUserDirectory:
    def __init__(self, *, stub: user_pb2_grpc.UserServiceStub) -> None:
        self._stub = stub

    async def exists(self, user_id: int) -> bool:
        try:
            await self._stub.GetUser(user_pb2.GetUserRequest(id=user_id))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return False
            # The user service failing is an outage for our caller (503), not a bug of ours.
            raise UnavailableError("external service unavailable") from error
        return True
