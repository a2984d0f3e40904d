"""The AuthService servicer: parse the request, call one use case, map the result.

Errors are not handled here: the platform interceptor maps domain errors to status codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack.user.v1 import user_pb2
from pinstack_auth.usecases import AuthUseCases, NewAccount, TokenPair
from pinstack_common.profiles import profile_to_proto

__all__ = ["AuthServicer"]


def _account(request: auth_pb2.RegisterRequest) -> NewAccount:
    return NewAccount(
        username=request.username,
        email=request.email,
        password=request.password,
        full_name=request.full_name,
        bio=request.bio,
        avatar_url=request.avatar_url,
    )


def _pair(pair: TokenPair) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=pair.access_token, refresh_token=pair.refresh_token, user_id=pair.user_id
    )


@dataclass(kw_only=True, eq=False)
class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    usecases: AuthUseCases

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: object
    ) -> auth_pb2.TokenPair:
        return _pair(await self.usecases.register(_account(request)))

    async def CreateAccount(
        self, request: auth_pb2.RegisterRequest, context: object
    ) -> user_pb2.User:
        return profile_to_proto(await self.usecases.create_account(_account(request)))

    async def Login(self, request: auth_pb2.LoginRequest, context: object) -> auth_pb2.TokenPair:
        pair = await self.usecases.login(
            login=request.login, password=request.password, client_address=request.client_address
        )
        return _pair(pair)

    async def Refresh(
        self, request: auth_pb2.RefreshRequest, context: object
    ) -> auth_pb2.TokenPair:
        return _pair(await self.usecases.refresh(request.refresh_token))

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: object
    ) -> auth_pb2.LogoutResponse:
        await self.usecases.logout(request.refresh_token)
        return auth_pb2.LogoutResponse()

    async def UpdatePassword(
        self, request: auth_pb2.UpdatePasswordRequest, context: object
    ) -> auth_pb2.UpdatePasswordResponse:
        await self.usecases.update_password(
            old_password=request.old_password, new_password=request.new_password
        )
        return auth_pb2.UpdatePasswordResponse()

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: object
    ) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(jwks_json=self.usecases.jwks())

    async def CheckSession(
        self, request: auth_pb2.CheckSessionRequest, context: object
    ) -> auth_pb2.CheckSessionResponse:
        answer = await self.usecases.check_session(
            session_id=request.session_id, user_id=request.user_id, issued_at=request.issued_at
        )
        return auth_pb2.CheckSessionResponse(
            revoked=answer.revoked, cache_current=answer.cache_current
        )
