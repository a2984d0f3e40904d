"""The user service, as the auth use cases need it (profiles live there, never passwords)."""

from __future__ import annotations

import grpc

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.context import caller_authorization
from pinstack_common.grpc.client import domain_error
from pinstack_common.profiles import Profile, profile_from_proto

__all__ = ["GrpcUserDirectory"]


class GrpcUserDirectory:
    def __init__(self, *, stub: user_pb2_grpc.UserServiceAsyncStub) -> None:
        self._stub = stub

    async def create_user(
        self, *, username: str, email: str, full_name: str, bio: str, avatar_url: str
    ) -> Profile:
        request = user_pb2.CreateUserRequest(
            username=username, email=email, full_name=full_name, bio=bio, avatar_url=avatar_url
        )
        try:
            user: user_pb2.User = await self._stub.CreateUser(request)
        except grpc.aio.AioRpcError as error:
            raise domain_error(error) from error
        return profile_from_proto(user)

    async def find_by_login(self, login: str) -> Profile:
        """An email if it contains ``@`` (usernames cannot), else a username."""
        try:
            user: user_pb2.User
            if "@" in login:
                user = await self._stub.GetUserByEmail(user_pb2.GetUserByEmailRequest(email=login))
            else:
                user = await self._stub.GetUserByUsername(
                    user_pb2.GetUserByUsernameRequest(username=login)
                )
        except grpc.aio.AioRpcError as error:
            raise domain_error(error) from error
        return profile_from_proto(user)

    async def delete_user(self, user_id: int, *, authorization: str) -> None:
        """Delete as the user themself: the user service only lets the owner delete a profile."""
        previous = caller_authorization.set(authorization)
        try:
            await self._stub.DeleteUser(user_pb2.DeleteUserRequest(id=user_id))
        except grpc.aio.AioRpcError as error:
            raise domain_error(error) from error
        finally:
            caller_authorization.reset(previous)
