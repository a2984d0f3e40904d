"""The relation service's view of the user service: existence checks and batched profiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.errors import UnavailableError

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
    def __init__(self, *, stub: user_pb2_grpc.UserServiceStub) -> None:
        self._stub = stub

    async def exists(self, user_id: int) -> bool:
        try:
            await self._stub.GetUser(user_pb2.GetUserRequest(id=user_id))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise _outage(error) from error
        return True

    async def get_many(self, ids: Sequence[int]) -> list[RelatedUser]:
        if not ids:
            return []
        try:
            found = await self._stub.GetUsers(user_pb2.GetUsersRequest(ids=list(ids)))
        except grpc.aio.AioRpcError as error:
            raise _outage(error) from error
        return [
            RelatedUser(id=user.id, username=user.username, avatar_url=user.avatar_url)
            for user in found.users
        ]


def _outage(error: grpc.aio.AioRpcError) -> UnavailableError:
    # The user service failing is an outage for our caller, not a bug of ours (503, not 500).
    return UnavailableError(f"external service unavailable ({error.code().name})")
