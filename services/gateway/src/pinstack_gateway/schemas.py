"""The shapes of the HTTP contract's answers, for the OpenAPI document.

The routes build their JSON by hand (``envelope.ok`` and the ``*_json`` functions) because the
contract omits empty optional fields, which a model would send as ``null``. These TypedDicts
describe exactly that: an optional field is ``NotRequired``, never nullable. They are declared as
the routes' ``response_model``; a route returns a ``JSONResponse``, which FastAPI sends as it is,
so the models document the wire without touching it (``tests/contract`` checks every answer
against them).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, NotRequired, TypeVar

from pydantic import ConfigDict, WithJsonSchema, with_config

# pydantic reads TypedDicts from typing_extensions only, on Python < 3.12.
from typing_extensions import TypedDict

from pinstack_common.validation import VALIDATION_FAILED

__all__ = [
    "Answer",
    "Author",
    "CreatedPost",
    "Done",
    "Envelope",
    "ErrorAnswer",
    "Followees",
    "Followers",
    "Media",
    "Message",
    "Notification",
    "NotificationFeed",
    "Post",
    "PostPage",
    "RelatedUser",
    "Sent",
    "Tag",
    "TokenPair",
    "UnreadCount",
    "User",
    "UserPage",
    "request_example",
]

Payload = TypeVar("Payload")
DateTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
_STAMP = "2024-01-01T12:00:00Z"


def request_example(example: dict[str, Any]) -> ConfigDict:
    """A request body model's example for the document (the Swagger UI fills it in)."""
    return ConfigDict(json_schema_extra={"examples": [example]})


def _example(**example: Any) -> ConfigDict:
    """An example for the document; ``extra="forbid"`` documents that no other field is sent."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


_EXACT = ConfigDict(extra="forbid")


@with_config(_EXACT)
class Envelope(TypedDict, Generic[Payload]):
    """A success with a payload: ``status`` repeats the HTTP status."""

    status: int
    data: Payload


@with_config(_example(status=200))
class Answer(TypedDict):
    """A success without a payload."""

    status: int


@with_config(_example(status=400, message=VALIDATION_FAILED))
class ErrorAnswer(TypedDict):
    """A failure: ``message`` is one of the contract's exact strings."""

    status: int
    message: str


_TOKENS = {"access_token": "eyJhbGciOiJFZERTQSJ9...", "refresh_token": "eyJhbGciOi..."}


@with_config(_example(**_TOKENS))
class TokenPair(TypedDict):
    access_token: str
    refresh_token: str


_USER = {
    "id": 1,
    "username": "alice",
    "email": "alice@example.com",
    "full_name": "Alice Liddell",
    "created_at": _STAMP,
    "updated_at": _STAMP,
}


@with_config(_example(**_USER))
class User(TypedDict):
    id: int
    username: str
    email: str
    full_name: NotRequired[str]
    bio: NotRequired[str]
    avatar_url: NotRequired[str]
    created_at: DateTime
    updated_at: DateTime


@with_config(_example(users=[_USER], total=1))
class UserPage(TypedDict):
    users: list[User]
    total: int


@with_config(_example(id=1, url="https://example.com/cat.png", type="image", position=1))
class Media(TypedDict):
    id: int
    url: str
    type: str
    position: int


@with_config(_example(id=1, name="cats"))
class Tag(TypedDict):
    id: int
    name: str


@with_config(_EXACT)
class Author(TypedDict):
    id: int
    username: str
    full_name: NotRequired[str]
    avatar_url: NotRequired[str]


_POST = {
    "id": 1,
    "author": {"id": 1, "username": "alice"},
    "title": "Hello",
    "content": "First post",
    "created_at": _STAMP,
    "updated_at": _STAMP,
    "tags": [{"id": 1, "name": "cats"}],
}


@with_config(_example(**_POST))
class Post(TypedDict):
    """A post as read: the author nested as a public summary."""

    id: int
    author: Author
    title: str
    content: NotRequired[str]
    created_at: DateTime
    updated_at: DateTime
    media: NotRequired[list[Media]]
    tags: NotRequired[list[Tag]]


@with_config(
    _example(
        id=1,
        title="Hello",
        created_at=_STAMP,
        updated_at=_STAMP,
        author_id=1,
        author_username="alice",
        author_email="alice@example.com",
    )
)
class CreatedPost(TypedDict):
    """A post as created: the author flattened into ``author_*`` fields."""

    id: int
    title: str
    content: NotRequired[str]
    created_at: DateTime
    updated_at: DateTime
    author_id: int
    author_username: str
    author_email: str
    author_full_name: NotRequired[str]
    author_bio: NotRequired[str]
    author_avatar_url: NotRequired[str]
    media: NotRequired[list[Media]]
    tags: NotRequired[list[Tag]]


@with_config(_example(posts=[_POST], total=1))
class PostPage(TypedDict):
    posts: list[Post]
    total: int


@with_config(_EXACT)
class RelatedUser(TypedDict):
    id: int
    username: str
    avatar_url: NotRequired[str]


@with_config(_example(followers=[{"id": 2, "username": "bob"}], total=1, page=1, limit=20))
class Followers(TypedDict):
    followers: list[RelatedUser]
    total: int
    page: int
    limit: int


@with_config(_example(followees=[{"id": 2, "username": "bob"}], total=1, page=1, limit=20))
class Followees(TypedDict):
    followees: list[RelatedUser]
    total: int
    page: int
    limit: int


_NOTIFICATION = {
    "id": 1,
    "user_id": 2,
    "type": "follow_created",
    "is_read": False,
    "created_at": _STAMP,
    "payload": {"follower_id": 1, "followee_id": 2},
}


@with_config(_example(**_NOTIFICATION))
class Notification(TypedDict):
    """``payload`` is any JSON value; ``sender_id`` is absent on what the system produced."""

    id: int
    user_id: int
    type: str
    is_read: bool
    created_at: DateTime
    sender_id: NotRequired[int]
    payload: NotRequired[Any]


@with_config(_example(notifications=[_NOTIFICATION], total=1, page=1, limit=10, total_pages=1))
class NotificationFeed(TypedDict):
    notifications: list[Notification]
    total: int
    page: int
    limit: int
    total_pages: int


@with_config(_example(count=3))
class UnreadCount(TypedDict):
    count: int


@with_config(_example(message="Followed successfully"))
class Message(TypedDict):
    message: str


@with_config(_example(success=True, message="Notification marked as read"))
class Done(TypedDict):
    success: bool
    message: str


@with_config(_example(notification_id=1, message="Notification sent successfully"))
class Sent(TypedDict):
    notification_id: int
    message: str
