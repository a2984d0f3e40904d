"""``/api/v1/users``: profiles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StrictInt

from pinstack.auth.v1 import auth_pb2
from pinstack.user.v1 import user_pb2
from pinstack_common.errors import InvalidArgumentError
from pinstack_common.validation import positive_id
from pinstack_gateway.envelope import ok, rfc3339
from pinstack_gateway.identity import Caller
from pinstack_gateway.openapi import TOO_MANY_REQUESTS, answers
from pinstack_gateway.schemas import User, UserPage, request_example
from pinstack_gateway.upstreams import proxy
from pinstack_gateway.validation import Id, Limit, Page, StrictRoute, page_number

__all__ = ["router", "user_json"]

router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=StrictRoute)


class CreateUserBody(BaseModel):
    username: str = ""
    email: str = ""
    password: str = ""
    full_name: str = ""
    bio: str = ""
    avatar_url: str = ""


class UpdateUserBody(BaseModel):
    id: StrictInt = 0
    username: str | None = None
    email: str | None = None
    full_name: str | None = None
    bio: str | None = None


class AvatarBody(BaseModel):
    model_config = request_example({"avatar_url": "https://example.com/alice.png"})

    avatar_url: str = ""


def user_json(user: user_pb2.User) -> dict[str, Any]:
    """The contract's user object: optional fields omitted when empty."""
    body: dict[str, Any] = {"id": user.id, "username": user.username, "email": user.email}
    for name in ("full_name", "bio", "avatar_url"):
        if value := getattr(user, name):
            body[name] = value
    body["created_at"] = rfc3339(user.created_at)
    body["updated_at"] = rfc3339(user.updated_at)
    return body


_NOT_FOUND = {404: ["user not found"]}
_TAKEN = {409: ["username already exists", "email already exists"]}


@router.get("/search", **answers(UserPage, errors={400: ["invalid search query"]}))
async def search(
    request: Request, query: str = "", page: Page = 1, limit: Limit = 10
) -> JSONResponse:
    if not query.strip():
        raise InvalidArgumentError("invalid search query")
    page_number(page, limit)
    found = await proxy(request, "user").user.SearchUsers(
        user_pb2.SearchUsersRequest(query=query, page=page, limit=limit)
    )
    return ok({"users": [user_json(user) for user in found.users], "total": found.total})


@router.get("/username/{username}", **answers(User, errors=_NOT_FOUND))
async def by_username(username: str, request: Request) -> JSONResponse:
    user = await proxy(request, "user").user.GetUserByUsername(
        user_pb2.GetUserByUsernameRequest(username=username)
    )
    return ok(user_json(user))


@router.get("/email/{email}", **answers(User, errors=_NOT_FOUND))
async def by_email(email: str, request: Request) -> JSONResponse:
    user = await proxy(request, "user").user.GetUserByEmail(
        user_pb2.GetUserByEmailRequest(email=email)
    )
    return ok(user_json(user))


@router.get("/{user_id}", **answers(User, errors=_NOT_FOUND))
async def get_user(user_id: Id, request: Request) -> JSONResponse:
    user = await proxy(request, "user").user.GetUser(
        user_pb2.GetUserRequest(id=positive_id(user_id))
    )
    return ok(user_json(user))


@router.post("", **answers(User, status=201, errors={**_TAKEN, 429: [TOO_MANY_REQUESTS]}))
async def create_user(body: CreateUserBody, request: Request, _caller: Caller) -> JSONResponse:
    user = await proxy(request, "auth").auth.CreateAccount(
        auth_pb2.RegisterRequest(**body.model_dump())
    )
    return ok(user_json(user), status=201)


@router.put("", **answers(User, errors={403: ["forbidden"], **_NOT_FOUND, **_TAKEN}))
async def update_user(body: UpdateUserBody, request: Request, _caller: Caller) -> JSONResponse:
    fields = body.model_dump(exclude={"id"}, exclude_none=True)
    message = user_pb2.UpdateUserRequest(id=positive_id(body.id), **fields)
    return ok(user_json(await proxy(request, "user").user.UpdateUser(message)))


@router.delete("/{user_id}", **answers(status=204, errors={403: ["forbidden"], **_NOT_FOUND}))
async def delete_user(user_id: Id, request: Request, _caller: Caller) -> Response:
    await proxy(request, "user").user.DeleteUser(
        user_pb2.DeleteUserRequest(id=positive_id(user_id))
    )
    return Response(status_code=204)


# No 404: the account is the caller's, and deleting it ends its sessions (a 401).
@router.put("/avatar", **answers())
async def update_avatar(body: AvatarBody, request: Request, caller: Caller) -> JSONResponse:
    message = user_pb2.UpdateAvatarRequest(id=caller.user_id, avatar_url=body.avatar_url)
    await proxy(request, "user").user.UpdateAvatar(message)
    return ok()
