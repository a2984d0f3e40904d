"""The relation service's view of the user service: existence checks and batched profiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.grpc_client import domain_error

__all__ = ["GrpcUserDirectory", "RelatedUser", "UserDirectory"]


@dataclass(frozen=True, slots=True)
class RelatedUser:
    id: int
    username: str
    avatar_url: str


class UserDirectory(Protocol):
    async def exists(self, user_id: int) -> bool: ...

    async def get_many(self, ids: Sequence[int]) -> list[RelatedUser]:
        """The known users among ``ids`` (any order; unknown ids are absent)."""


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

    async def get_many(self, ids: Sequence[int]) -> list[RelatedUser]:
        if not ids:
            return []
        try:
            found = await self._stub.GetUsers(user_pb2.GetUsersRequest(ids=list(ids)))
        except grpc.aio.AioRpcError as error:
            raise domain_error(error) from error
        return [
            RelatedUser(id=user.id, username=user.username, avatar_url=user.avatar_url)
            for user in found.users
        ]
