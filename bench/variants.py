"""Prototype fixes, applied to a component at start-up by ``serve_variant.py --patch NAME``.

They let ``ab.py`` measure a fix before anyone edits the service: the service's own code stays
as it is, and the prototype shows its owner what the change buys.

``one-query-list``: ``PostRepository.find`` for the read mix's filter (author only) in one
statement instead of four (count, page, media of the page, tags of the page): the total comes
from ``count(*) OVER ()`` (window functions see every match before LIMIT), media and tags as
JSON aggregates per post, and the statement runs on the session's connection, past the ORM
layer. The profile shows SQLAlchemy's per-statement work (statement building, cache keys, ORM
execution), not PostgreSQL, dominating the post service, so fewer statements is the lever.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["PATCHES"]

_PAGE_SQL = """
SELECT p.id, p.author_id, p.title, p.content, p.created_at, p.updated_at,
       count(*) OVER () AS total,
       (SELECT coalesce(json_agg(json_build_object(
                   'id', m.id, 'url', m.url, 'type', m.type, 'position', m.position)
                 ORDER BY m.position, m.ordinal), '[]')
          FROM {media} m WHERE m.post_id = p.id) AS media,
       (SELECT coalesce(json_agg(json_build_object('id', t.tag_id, 'name', t.name)
                 ORDER BY t.ordinal), '[]')
          FROM {post_tags} t WHERE t.post_id = p.id) AS tags
  FROM {posts} p
 WHERE p.author_id = :author
 ORDER BY p.created_at DESC, p.id DESC
 LIMIT :limit OFFSET :offset
"""


def _json(value: Any) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(value) if isinstance(value, str) else value
    return loaded


def one_query_list() -> None:
    from sqlalchemy import text

    from pinstack_post import models
    from pinstack_post import repository as repo

    # Table names from the service's own models, so the prototype follows its schema.
    names = {
        "posts": models.posts.name,
        "media": models.media.name,
        "post_tags": models.post_tags.name,
    }
    page_sql = text(_PAGE_SQL.format(**names))
    count_sql = text(f"SELECT count(*) FROM {models.posts.name} WHERE author_id = :author")  # noqa: S608
    original = repo.PostRepository.find

    async def find(
        self: repo.PostRepository, session: Any, *, where: repo.PostFilter, offset: int, limit: int
    ) -> tuple[list[repo.PostRecord], int]:
        only_author = where.author_id is not None and where.tag is None
        if not only_author or where.created_after or where.created_before:
            return await original(self, session, where=where, offset=offset, limit=limit)
        connection = await session.connection()
        params = {"author": where.author_id, "limit": limit, "offset": offset}
        rows = (await connection.execute(page_sql, params)).all()
        if not rows:  # past the end: the window had nothing to count
            counted = connection.execute(count_sql, {"author": where.author_id})
            total = 0 if offset == 0 else (await counted).scalar_one()
            return [], int(total)
        page = [
            repo.PostRecord(
                id=r.id,
                author_id=r.author_id,
                title=r.title,
                content=r.content,
                created_at=r.created_at,
                updated_at=r.updated_at,
                media=tuple(repo.MediaRecord(**m) for m in _json(r.media)),
                tags=tuple(repo.TagRecord(**t) for t in _json(r.tags)),
            )
            for r in rows
        ]
        return page, int(rows[0].total)

    repo.PostRepository.find = find  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {"one-query-list": one_query_list}
