"""``/api/v1/posts``: posts with media and tags.

The gateway only parses (a value that does not parse is ``invalid input``); the post service
enforces the rules and ownership, from the caller's token that the ``Caller`` dependency forwards.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, StrictInt

from pinstack.post.v1 import post_pb2
from pinstack_common.errors import InvalidArgumentError
from pinstack_common.validation import VALIDATION_FAILED, positive_id
from pinstack_gateway.envelope import ok, rfc3339
from pinstack_gateway.identity import Caller
from pinstack_gateway.openapi import answers
from pinstack_gateway.routes import openapi_links
from pinstack_gateway.schemas import CreatedPost, Post, PostPage, request_example
from pinstack_gateway.upstreams import proxy
from pinstack_gateway.validation import (
    Id,
    IdFilter,
    Limit,
    Offset,
    StrictRoute,
    int32,
    page_limit,
)

__all__ = ["post_json", "router"]

router = APIRouter(prefix="/api/v1/posts", tags=["posts"], route_class=StrictRoute)


def _date_time(schema: dict[str, Any]) -> None:
    """Document the filter as an RFC 3339 date-time (so generated clients and the property tests
    send them); ``_timestamp`` still parses it, so a bad one gets the contract's message."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            branch["format"] = "date-time"


_DateTime = Annotated[str | None, Query(json_schema_extra=_date_time)]
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


class MediaBody(BaseModel):
    url: str = ""
    type: str = ""
    position: StrictInt = 0


class CreatePostBody(BaseModel):
    model_config = request_example(
        {
            "title": "Hello",
            "content": "First post",
            "tags": ["cats"],
            "media_items": [{"url": "https://example.com/cat.png", "type": "image", "position": 1}],
        }
    )

    title: str = ""
    content: str = ""
    tags: list[str] | None = None
    media_items: list[MediaBody] | None = None


class UpdatePostBody(BaseModel):
    """A field that is present replaces the old value (an empty list clears); null keeps it."""

    title: str | None = None
    content: str | None = None
    tags: list[str] | None = None
    media_items: list[MediaBody] | None = None


def _media_json(post: post_pb2.Post) -> list[dict[str, Any]]:
    return [{"id": m.id, "url": m.url, "type": m.type, "position": m.position} for m in post.media]


def _extras(post: post_pb2.Post, body: dict[str, Any]) -> dict[str, Any]:
    """Optional parts, omitted when empty as the contract says."""
    if post.media:
        body["media"] = _media_json(post)
    if post.tags:
        body["tags"] = [{"id": t.id, "name": t.name} for t in post.tags]
    return body


def post_json(post: post_pb2.Post) -> dict[str, Any]:
    """The read shape: the author nested as a public summary."""
    author: dict[str, Any] = {"id": post.author.id, "username": post.author.username}
    for name in ("full_name", "avatar_url"):
        if value := getattr(post.author, name):
            author[name] = value
    body: dict[str, Any] = {"id": post.id, "author": author, "title": post.title}
    if post.content:
        body["content"] = post.content
    body["created_at"] = rfc3339(post.created_at)
    body["updated_at"] = rfc3339(post.updated_at)
    return _extras(post, body)


def created_json(post: post_pb2.Post) -> dict[str, Any]:
    """The create shape: the author flattened into ``author_*`` fields (as the original)."""
    body: dict[str, Any] = {"id": post.id, "title": post.title}
    if post.content:
        body["content"] = post.content
    body["created_at"] = rfc3339(post.created_at)
    body["updated_at"] = rfc3339(post.updated_at)
    body["author_id"] = post.author.id
    body["author_username"] = post.author.username
    body["author_email"] = post.author.email
    for name in ("full_name", "bio", "avatar_url"):
        if value := getattr(post.author, name):
            body[f"author_{name}"] = value
    return _extras(post, body)


def _timestamp(value: str) -> Timestamp:
    """An RFC 3339 date-time with an offset; anything else is ``validation failed``."""
    if _RFC3339.fullmatch(value) is None:
        raise InvalidArgumentError(VALIDATION_FAILED)
    stamp = Timestamp()
    try:
        # An offset can carry a valid local time past year 1 or 9999 in UTC: OverflowError.
        stamp.FromDatetime(datetime.fromisoformat(value.upper()))
    except (ValueError, OverflowError) as error:
        raise InvalidArgumentError(VALIDATION_FAILED) from error
    return stamp


def _media(items: list[MediaBody] | None) -> list[post_pb2.MediaInput]:
    return [
        post_pb2.MediaInput(url=m.url, type=m.type, position=int32(m.position)) for m in items or []
    ]


_CREATED_LINKS = openapi_links(
    "post_id",
    "/data/id",
    "get_post_api_v1_posts__post_id__get",
    "update_post_api_v1_posts__post_id__put",
    "delete_post_api_v1_posts__post_id__delete",
)


_OWNED = {403: ["forbidden"], 404: ["post not found"]}


@router.post(
    "",
    **answers(CreatedPost, status=201),
    openapi_extra={"responses": {"201": {"links": _CREATED_LINKS}}},
)
async def create_post(body: CreatePostBody, request: Request, _caller: Caller) -> JSONResponse:
    message = post_pb2.CreatePostRequest(
        title=body.title, content=body.content, tags=body.tags or [], media=_media(body.media_items)
    )
    return ok(created_json(await proxy(request, "post").post.CreatePost(message)), status=201)


@router.get("/list", **answers(PostPage))
async def list_posts(
    request: Request,
    *,
    author_id: IdFilter = None,
    offset: Offset = 0,
    limit: Limit = 20,
    created_after: _DateTime = None,
    created_before: _DateTime = None,
    tag: str | None = None,
) -> JSONResponse:
    int32(offset, minimum=0)
    page_limit(limit)
    message = post_pb2.ListPostsRequest(offset=offset, limit=limit)
    if author_id is not None:
        message.author_id = positive_id(author_id)
    if tag:
        message.tag = tag
    if created_after is not None:
        message.created_after.CopyFrom(_timestamp(created_after))
    if created_before is not None:
        message.created_before.CopyFrom(_timestamp(created_before))
    found = await proxy(request, "post").post.ListPosts(message)
    return ok({"posts": [post_json(post) for post in found.posts], "total": found.total})


@router.get("/{post_id}", **answers(Post, errors={404: ["post not found"]}))
async def get_post(post_id: Id, request: Request) -> JSONResponse:
    post = await proxy(request, "post").post.GetPost(
        post_pb2.GetPostRequest(id=positive_id(post_id))
    )
    return ok(post_json(post))


@router.put("/{post_id}", **answers(Post, errors=_OWNED))
async def update_post(
    post_id: Id, body: UpdatePostBody, request: Request, _caller: Caller
) -> JSONResponse:
    message = post_pb2.UpdatePostRequest(id=positive_id(post_id))
    if body.title is not None:
        message.title = body.title
    if body.content is not None:
        message.content = body.content
    if body.tags is not None:
        message.tags.CopyFrom(post_pb2.StringList(values=body.tags))
    if body.media_items is not None:
        message.media.CopyFrom(post_pb2.MediaList(items=_media(body.media_items)))
    return ok(post_json(await proxy(request, "post").post.UpdatePost(message)))


@router.delete("/{post_id}", **answers(errors=_OWNED))
async def delete_post(post_id: Id, request: Request, _caller: Caller) -> JSONResponse:
    await proxy(request, "post").post.DeletePost(
        post_pb2.DeletePostRequest(id=positive_id(post_id))
    )
    return ok()
