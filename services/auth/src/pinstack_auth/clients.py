"""The user service, as the auth use cases need it (profiles live there, never passwords)."""

from __future__ import annotations

import grpc

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_auth.errors import UpstreamTimeoutError
from pinstack_common.context import caller_authorization
from pinstack_common.errors import (
    AlreadyExistsError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    PinstackError,
    RateLimitedError,
    UnauthenticatedError,
    UnavailableError,
)
from pinstack_common.profiles import Profile, profile_from_proto

__all__ = ["GrpcUserDirectory", "domain_error"]

_BY_CODE: dict[grpc.StatusCode, type[PinstackError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: ForbiddenError,
}


def domain_error(error: grpc.aio.AioRpcError) -> Exception:
    """The one translation of a failed call back into the domain error the callee raised.

    The callee's interceptor put the contract's message in ``details``; passing it on unchanged
    keeps e.g. ``username already exists`` exact all the way to the HTTP answer. Codes that are
    not a client's mistake become outage errors, or stay the RPC error (a 500: a bug).
    """
    code: grpc.StatusCode = error.code()
    details = str(error.details() or "")
    if code in _BY_CODE:
        return _BY_CODE[code](details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RateLimitedError()
    if code == grpc.StatusCode.UNAVAILABLE:
        return UnavailableError("external service unavailable")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return UpstreamTimeoutError()
    unexpected: Exception = error
    return unexpected


class GrpcUserDirectory:
    def __init__(self, *, channel: grpc.aio.Channel) -> None:
        self._stub = user_pb2_grpc.UserServiceStub(channel)

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
