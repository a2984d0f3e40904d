"""Cache-aside for single posts (without their author, who is cached on their own).

Keeping the author out of the cached post means a profile change invalidates one key, not every
post of that author. Redis is optional: :class:`~pinstack_common.cache.Cache` turns its failures
into misses, so reads fall back to the database.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pinstack_common.cache import Cache
from pinstack_post.repository import MediaRecord, PostRecord, TagRecord

__all__ = ["PostCache"]


def _key(post_id: int) -> str:
    return f"post:{post_id}"


def _encode(post: PostRecord) -> bytes:
    body: dict[str, Any] = {
        "id": post.id,
        "author_id": post.author_id,
        "title": post.title,
        "content": post.content,
        "created_at": post.created_at.isoformat(),
        "updated_at": post.updated_at.isoformat(),
        "media": [[m.id, m.url, m.type, m.position] for m in post.media],
        "tags": [[t.id, t.name] for t in post.tags],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _decode(raw: bytes) -> PostRecord:
    body = json.loads(raw)
    return PostRecord(
        id=body["id"],
        author_id=body["author_id"],
        title=body["title"],
        content=body["content"],
        created_at=datetime.fromisoformat(body["created_at"]),
        updated_at=datetime.fromisoformat(body["updated_at"]),
        media=tuple(
            MediaRecord(id=m[0], url=m[1], type=m[2], position=m[3]) for m in body["media"]
        ),
        tags=tuple(TagRecord(id=t[0], name=t[1]) for t in body["tags"]),
    )


class PostCache:
    def __init__(self, *, cache: Cache) -> None:
        self._cache = cache

    async def get(self, post_id: int) -> PostRecord | None:
        raw = await self._cache.get(_key(post_id))
        if raw is None:
            return None
        try:
            return _decode(raw)
        except (ValueError, KeyError, TypeError, IndexError):
            # An entry written by another version of this service: treat it as a miss.
            return None

    async def put(self, post: PostRecord) -> None:
        await self._cache.set_many({_key(post.id): _encode(post)})

    async def forget(self, *post_ids: int) -> None:
        await self._cache.delete(*(_key(post_id) for post_id in post_ids))
