"""``/api/v1/relation``: follow, unfollow, followers and followees.

The follower is always the caller: the gateway forwards the bearer token and the relation
service verifies it again; ``followee_id`` is the only id a client supplies.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StrictInt

from pinstack.relation.v1 import relation_pb2
from pinstack_common.validation import positive_id
from pinstack_gateway.envelope import ok
from pinstack_gateway.identity import Caller
from pinstack_gateway.openapi import answers
from pinstack_gateway.schemas import Followees, Followers, Message, request_example
from pinstack_gateway.upstreams import proxy
from pinstack_gateway.validation import Id, Limit, Page, StrictRoute, page_number

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/relation", tags=["relations"], route_class=StrictRoute)


class FollowBody(BaseModel):
    model_config = request_example({"followee_id": 2})

    followee_id: StrictInt = 0


def _listing_request(user_id: int, page: int, limit: int) -> relation_pb2.ListRelationsRequest:
    # Checked here too: a 0 would read as "default" once it is on the wire.
    page_number(page, limit)
    return relation_pb2.ListRelationsRequest(user_id=positive_id(user_id), page=page, limit=limit)


def _related(user: relation_pb2.RelatedUser) -> dict[str, Any]:
    body: dict[str, Any] = {"id": user.id, "username": user.username}
    if user.avatar_url:
        body["avatar_url"] = user.avatar_url
    return body


_USER_NOT_FOUND = {404: ["user not found"]}


@router.post(
    "/follow",
    **answers(
        Message,
        errors={
            400: ["cannot follow yourself"],
            **_USER_NOT_FOUND,
            409: ["already following this user"],
        },
    ),
)
async def follow(body: FollowBody, request: Request, _caller: Caller) -> JSONResponse:
    await proxy(request, "relation").relation.Follow(
        relation_pb2.FollowRequest(followee_id=positive_id(body.followee_id))
    )
    return ok({"message": "Followed successfully"})


@router.post(
    "/unfollow",
    **answers(
        Message,
        errors={400: ["cannot unfollow yourself"], 404: ["follow relation not found"]},
    ),
)
async def unfollow(body: FollowBody, request: Request, _caller: Caller) -> JSONResponse:
    await proxy(request, "relation").relation.Unfollow(
        relation_pb2.UnfollowRequest(followee_id=positive_id(body.followee_id))
    )
    return ok({"message": "Unfollowed successfully"})


@router.get("/{user_id}/followers", **answers(Followers, errors=_USER_NOT_FOUND))
async def followers(
    user_id: Id, request: Request, page: Page = 1, limit: Limit = 20
) -> JSONResponse:
    found = await proxy(request, "relation").relation.GetFollowers(
        _listing_request(user_id, page, limit)
    )
    return ok(
        {
            "followers": [_related(user) for user in found.users],
            "total": found.total,
            "page": page,
            "limit": limit,
        }
    )


@router.get("/{user_id}/followees", **answers(Followees, errors=_USER_NOT_FOUND))
async def followees(
    user_id: Id, request: Request, page: Page = 1, limit: Limit = 20
) -> JSONResponse:
    found = await proxy(request, "relation").relation.GetFollowees(
        _listing_request(user_id, page, limit)
    )
    return ok(
        {
            "followees": [_related(user) for user in found.users],
            "total": found.total,
            "page": page,
            "limit": limit,
        }
    )
