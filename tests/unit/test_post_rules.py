"""Post rules, the cache codec and the gateway's post mapping: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pinstack.post.v1 import post_pb2
from pinstack_common.errors import InvalidArgumentError
from pinstack_gateway.routes.posts import _timestamp, created_json, post_json
from pinstack_post.caching import _decode, _encode
from pinstack_post.repository import MediaInput, MediaRecord, PostRecord, TagRecord
from pinstack_post.validation import (
    validate_media,
    validate_page,
    validate_tags,
    validate_title,
)


def test_tags_are_trimmed_and_deduplicated_regardless_of_case() -> None:
    assert validate_tags([" Go ", "go", "Rust", "GO"]) == ["Go", "Rust"]


@pytest.mark.parametrize("tags", [[""], ["  "], ["x" * 51]])
def test_bad_tags(tags: list[str]) -> None:
    with pytest.raises(InvalidArgumentError, match="validation failed"):
        validate_tags(tags)


def test_media_sorted_by_position_then_given_order() -> None:
    items = [
        MediaInput(url="https://a.example/2a", type="image", position=2),
        MediaInput(url="https://a.example/1", type="video", position=1),
        MediaInput(url="https://a.example/2b", type="image", position=2),
    ]
    assert [item.url.rsplit("/", 1)[1] for item in validate_media(items)] == ["1", "2a", "2b"]


@pytest.mark.parametrize(
    "item",
    [
        MediaInput(url="ftp://a.example/x", type="image", position=1),
        MediaInput(url="https://", type="image", position=1),
        MediaInput(url="https://a.example/x", type="audio", position=1),
        MediaInput(url="https://a.example/x", type="image", position=0),
    ],
)
def test_bad_media(item: MediaInput) -> None:
    with pytest.raises(InvalidArgumentError):
        validate_media([item])


def test_title_and_page_bounds() -> None:
    assert validate_title("x" * 255)
    for title in ("", "   ", "x" * 256):
        with pytest.raises(InvalidArgumentError):
            validate_title(title)
    validate_page(offset=0, limit=100, max_limit=100)
    for offset, limit in ((-1, 10), (0, 0), (0, 101)):
        with pytest.raises(InvalidArgumentError):
            validate_page(offset=offset, limit=limit, max_limit=100)


def test_cache_codec_round_trips() -> None:
    post = PostRecord(
        id=7,
        author_id=3,
        title="t",
        content="c",
        created_at=datetime(2024, 1, 1, 12, tzinfo=UTC),
        updated_at=datetime(2024, 1, 2, 12, 30, 15, 123456, tzinfo=UTC),
        media=(MediaRecord(id=1, url="https://a.example/x", type="image", position=1),),
        tags=(TagRecord(id=9, name="Go"),),
    )
    assert _decode(_encode(post)) == post


@pytest.mark.parametrize(
    "value", ["2024-01-01T12:00:00Z", "2024-01-01t12:00:00.5+02:00", "2024-06-30T23:59:59-07:00"]
)
def test_rfc3339_accepted(value: str) -> None:
    assert _timestamp(value).seconds > 0


@pytest.mark.parametrize(
    "value", ["2024-01-01", "2024-01-01T12:00:00", "2024-02-30T00:00:00Z", "now", "1704110400"]
)
def test_rfc3339_rejected(value: str) -> None:
    with pytest.raises(InvalidArgumentError, match="validation failed"):
        _timestamp(value)


def _post() -> post_pb2.Post:
    post = post_pb2.Post(
        id=1,
        author=post_pb2.Author(id=2, username="al", email="al@example.com", bio="hi"),
        title="t",
        tags=[post_pb2.Tag(id=3, name="Go")],
    )
    post.created_at.FromDatetime(datetime(2024, 1, 1, tzinfo=UTC))
    post.updated_at.FromDatetime(datetime(2024, 1, 1, tzinfo=UTC))
    return post


def test_read_shape_nests_a_public_author_and_omits_empty_fields() -> None:
    body = post_json(_post())
    assert body == {
        "id": 1,
        "author": {"id": 2, "username": "al"},
        "title": "t",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "tags": [{"id": 3, "name": "Go"}],
    }


def test_create_shape_flattens_the_author() -> None:
    body = created_json(_post())
    assert body["author_id"] == 2
    assert body["author_email"] == "al@example.com"
    assert body["author_bio"] == "hi"
    assert "author_full_name" not in body
    assert "author" not in body
