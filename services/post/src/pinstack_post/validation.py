"""The post rules of the HTTP contract, enforced on the service's side of the wire.

Pure functions that return the normalised value or raise ``validation failed``: the gateway only
parses, so an internal caller cannot store what the contract forbids either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from pinstack_common.errors import InvalidArgumentError
from pinstack_common.validation import VALIDATION_FAILED, validate_avatar_url
from pinstack_post.repository import MediaInput

__all__ = [
    "CONTENT_MAX",
    "MEDIA_MAX",
    "MEDIA_TYPES",
    "TAG_MAX",
    "TITLE_MAX",
    "URL_MAX",
    "validate_content",
    "validate_media",
    "validate_page",
    "validate_range",
    "validate_tag",
    "validate_tags",
    "validate_title",
]

TITLE_MAX = 255
CONTENT_MAX = 10_000
URL_MAX = 512
MEDIA_MAX = 9
MEDIA_TYPES = frozenset({"image", "video"})
TAG_MAX = 50
# Not in the original contract, but every list is bounded; no real post carries this many.
TAGS_PER_POST_MAX = 100


def _fail() -> InvalidArgumentError:
    return InvalidArgumentError(VALIDATION_FAILED)


def validate_title(title: str) -> str:
    if not title.strip() or len(title) > TITLE_MAX:
        raise _fail()
    return title


def validate_content(content: str) -> str:
    if len(content) > CONTENT_MAX:
        raise _fail()
    return content


def validate_tag(tag: str) -> str:
    """1-50 characters after trimming; the spelling is kept."""
    trimmed = tag.strip()
    if not 1 <= len(trimmed) <= TAG_MAX:
        raise _fail()
    return trimmed


def validate_tags(names: Iterable[str]) -> list[str]:
    """Trimmed tags, one per case-insensitive spelling (the first one given wins)."""
    seen: dict[str, str] = {}
    for name in names:
        tag = validate_tag(name)
        seen.setdefault(tag.lower(), tag)
    if len(seen) > TAGS_PER_POST_MAX:
        raise _fail()
    return list(seen.values())


def validate_media(items: Sequence[MediaInput]) -> list[MediaInput]:
    """At most 9 items of image|video, positions 1-9, URLs absolute http(s) of <= 512 chars.

    Items are returned in display order: by position, then in the order given (a stable sort).
    """
    if len(items) > MEDIA_MAX:
        raise _fail()
    for item in items:
        if item.type not in MEDIA_TYPES or not 1 <= item.position <= MEDIA_MAX:
            raise _fail()
        if len(item.url) > URL_MAX:
            raise _fail()
        validate_avatar_url(item.url)
    return sorted(items, key=lambda item: item.position)


def validate_page(*, offset: int, limit: int, max_limit: int) -> None:
    if offset < 0 or not 1 <= limit <= max_limit:
        raise _fail()


def validate_range(after: datetime | None, before: datetime | None) -> None:
    """Both bounds are exclusive; an empty range is allowed (it simply matches nothing)."""
    for moment in (after, before):
        if moment is not None and moment.tzinfo is None:
            raise _fail()
