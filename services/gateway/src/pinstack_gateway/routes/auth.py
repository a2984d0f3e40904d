"""``/api/v1/auth``: register, login, refresh, logout, update-password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pinstack.auth.v1 import auth_pb2
from pinstack_gateway.envelope import ok
from pinstack_gateway.identity import Caller
from pinstack_gateway.openapi import TOO_MANY_REQUESTS, answers
from pinstack_gateway.schemas import Message, TokenPair, request_example
from pinstack_gateway.upstreams import proxy
from pinstack_gateway.validation import StrictRoute

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=StrictRoute)


class RegisterBody(BaseModel):
    model_config = request_example(
        {"username": "alice", "email": "alice@example.com", "password": "correct horse"}
    )

    username: str = ""
    email: str = ""
    password: str = ""
    full_name: str = ""
    bio: str = ""
    avatar_url: str = ""


class LoginBody(BaseModel):
    """``login`` is a username or an email."""

    model_config = request_example({"login": "alice", "password": "correct horse"})

    login: str = ""
    password: str = ""


class RefreshTokenBody(BaseModel):
    refresh_token: str = ""


class UpdatePasswordBody(BaseModel):
    model_config = request_example(
        {"old_password": "correct horse", "new_password": "battery staple"}
    )

    old_password: str = ""
    new_password: str = ""


def _pair(pair: auth_pb2.TokenPair) -> dict[str, str]:
    return {"access_token": pair.access_token, "refresh_token": pair.refresh_token}


@router.post(
    "/register",
    **answers(
        TokenPair,
        status=201,
        errors={
            409: ["username already exists", "email already exists"],
            429: [TOO_MANY_REQUESTS],
        },
    ),
)
async def register(body: RegisterBody, request: Request) -> JSONResponse:
    pair = await proxy(request, "auth").auth.Register(auth_pb2.RegisterRequest(**body.model_dump()))
    return ok(_pair(pair), status=201)


@router.post(
    "/login",
    **answers(
        TokenPair,
        errors={
            401: ["invalid credentials"],
            404: ["user not found"],
            429: [TOO_MANY_REQUESTS],
        },
    ),
)
async def login(body: LoginBody, request: Request) -> JSONResponse:
    address = request.client.host if request.client else ""
    message = auth_pb2.LoginRequest(
        login=body.login, password=body.password, client_address=address
    )
    return ok(_pair(await proxy(request, "auth").auth.Login(message)))


@router.post("/refresh", **answers(TokenPair, errors={401: ["invalid refresh token"]}))
async def refresh(body: RefreshTokenBody, request: Request) -> JSONResponse:
    pair = await proxy(request, "auth").auth.Refresh(
        auth_pb2.RefreshRequest(refresh_token=body.refresh_token)
    )
    return ok(_pair(pair))


@router.post("/logout", **answers(errors={401: ["invalid refresh token"]}))
async def logout(body: RefreshTokenBody, request: Request) -> JSONResponse:
    await proxy(request, "auth").auth.Logout(
        auth_pb2.LogoutRequest(refresh_token=body.refresh_token)
    )
    return ok()


@router.post(
    "/update-password",
    **answers(Message, errors={401: ["invalid credentials"], 429: [TOO_MANY_REQUESTS]}),
)
async def update_password(
    body: UpdatePasswordBody, request: Request, _caller: Caller
) -> JSONResponse:
    message = auth_pb2.UpdatePasswordRequest(
        old_password=body.old_password, new_password=body.new_password
    )
    await proxy(request, "auth").auth.UpdatePassword(message)
    return ok({"message": "Password updated successfully"})
