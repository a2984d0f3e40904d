"""``/api/v1/auth``: register, login, refresh, logout, update-password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from pinstack.auth.v1 import auth_pb2
from pinstack_gateway.envelope import ok
from pinstack_gateway.identity import Caller
from pinstack_gateway.upstreams import proxy
from pinstack_gateway.validation import StrictRoute

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=StrictRoute)


class RegisterBody(BaseModel):
    username: str = ""
    email: str = ""
    password: str = ""
    full_name: str = ""
    bio: str = ""
    avatar_url: str = ""


class LoginBody(BaseModel):
    login: str = ""
    password: str = ""


class RefreshTokenBody(BaseModel):
    refresh_token: str = ""


class UpdatePasswordBody(BaseModel):
    old_password: str = ""
    new_password: str = ""


def _pair(pair: auth_pb2.TokenPair) -> dict[str, str]:
    return {"access_token": pair.access_token, "refresh_token": pair.refresh_token}


@router.post("/register", status_code=201)
async def register(body: RegisterBody, request: Request) -> JSONResponse:
    pair = await proxy(request, "auth").auth.Register(auth_pb2.RegisterRequest(**body.model_dump()))
    return ok(_pair(pair), status=201)


@router.post("/login")
async def login(body: LoginBody, request: Request) -> JSONResponse:
    address = request.client.host if request.client else ""
    message = auth_pb2.LoginRequest(
        login=body.login, password=body.password, client_address=address
    )
    return ok(_pair(await proxy(request, "auth").auth.Login(message)))


@router.post("/refresh")
async def refresh(body: RefreshTokenBody, request: Request) -> JSONResponse:
    pair = await proxy(request, "auth").auth.Refresh(
        auth_pb2.RefreshRequest(refresh_token=body.refresh_token)
    )
    return ok(_pair(pair))


@router.post("/logout")
async def logout(body: RefreshTokenBody, request: Request) -> JSONResponse:
    await proxy(request, "auth").auth.Logout(
        auth_pb2.LogoutRequest(refresh_token=body.refresh_token)
    )
    return ok()


@router.post("/update-password")
async def update_password(
    body: UpdatePasswordBody, request: Request, _caller: Caller
) -> JSONResponse:
    message = auth_pb2.UpdatePasswordRequest(
        old_password=body.old_password, new_password=body.new_password
    )
    await proxy(request, "auth").auth.UpdatePassword(message)
    return ok({"message": "Password updated successfully"})
