"""The user service as its peers ask it: does a user exist, and the profiles of many at once.

Notification (is there a recipient?), relation (follow targets, pages of followers) and post
(authors) ask the same two questions; the answers are the kit's :class:`Profile`, mapped once in
:mod:`pinstack_common.profiles`.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.grpc.client import domain_error
from pinstack_common.profiles import Profile, profile_from_proto

__all__ = ["GrpcUserDirectory"]


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

    async def get_many(self, ids: Sequence[int]) -> list[Profile]:
        """The known users among ``ids``, in one call (any order; unknown ids are absent)."""
        if not ids:
            return []
        try:
            found = await self._stub.GetUsers(user_pb2.GetUsersRequest(ids=list(ids)))
        except grpc.aio.AioRpcError as error:
            raise domain_error(error) from error
        return [profile_from_proto(user) for user in found.users]
