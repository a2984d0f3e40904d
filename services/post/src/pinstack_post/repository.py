"""SQL for posts, media and tags. The only module of the post service that talks to the database.

Every read is one statement whatever the page size: the posts, their media and their tags come
back together (media and tags as JSON arrays per post), and a list page counts every match with
``count(*) OVER ()`` in the same statement. Profiling showed SQLAlchemy's per-statement work, not
PostgreSQL, dominating the service's CPU (BENCHMARKS.md), so fewer statements is what pays. The
read statements are built once per filter shape and reused: a reused statement object keeps its
memoized cache key, so executing it skips rebuilding the construct and re-deriving the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    ScalarSelect,
    Select,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_post.models import media, post_tags, posts, tags

__all__ = ["MediaInput", "MediaRecord", "PostFilter", "PostRecord", "PostRepository", "TagRecord"]


@dataclass(frozen=True, slots=True)
class MediaInput:
    url: str
    type: str
    position: int


@dataclass(frozen=True, slots=True)
class MediaRecord:
    id: int
    url: str
    type: str
    position: int


@dataclass(frozen=True, slots=True)
class TagRecord:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class PostRecord:
    id: int
    author_id: int
    title: str
    content: str
    created_at: datetime
    updated_at: datetime
    media: tuple[MediaRecord, ...] = ()
    tags: tuple[TagRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class PostFilter:
    author_id: int | None = None
    tag: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class PostRepository:
    """Queries over the post tables within the caller's session (the unit of work)."""

    async def insert(
        self,
        session: AsyncSession,
        *,
        author_id: int,
        title: str,
        content: str,
        tag_names: Sequence[str],
        media_items: Sequence[MediaInput],
    ) -> PostRecord:
        statement = (
            insert(posts)
            .values(author_id=author_id, title=title, content=content)
            .returning(posts.c.id)
        )
        post_id = int((await session.execute(statement)).scalar_one())
        await self._write_tags(session, post_id, tag_names)
        await self._write_media(session, post_id, media_items)
        return await self._load(session, post_id)

    async def get(
        self, session: AsyncSession, post_id: int, *, for_update: bool = False
    ) -> PostRecord | None:
        """The post with its media and tags in one statement (the same mapping as a page)."""
        connection = await session.connection()
        statement = _one_statement(for_update=for_update)
        row = (await connection.execute(statement, {"post_id": post_id})).mappings().first()
        return None if row is None else _post(row)

    async def find(
        self, session: AsyncSession, *, where: PostFilter, offset: int, limit: int
    ) -> tuple[list[PostRecord], int]:
        """One page, newest first, and the number of every match, in one statement.

        A page past the end has no row to carry the window count; only then (and only when
        ``offset`` > 0, since an empty first page means no match at all) a second statement
        counts the matches.
        """
        shape = _shape(where)
        params = _params(where)
        # The session's connection, not ``session.execute``: the ORM execution layer adds
        # Python work per statement and none of it applies to a Core select.
        connection = await session.connection()
        rows = (
            (
                await connection.execute(
                    _page_statement(*shape), params | {"offset": offset, "limit": limit}
                )
            )
            .mappings()
            .all()
        )
        if rows:
            return [_post(row) for row in rows], int(rows[0]["total"])
        if offset == 0:
            return [], 0
        total = (await connection.execute(_count_statement(*shape), params)).scalar_one()
        return [], int(total)

    async def update(
        self,
        session: AsyncSession,
        post_id: int,
        *,
        values: dict[str, str],
        tag_names: Sequence[str] | None,
        media_items: Sequence[MediaInput] | None,
    ) -> PostRecord:
        """Replace what is given (``None`` keeps, an empty list clears) and touch ``updated_at``."""
        statement = (
            update(posts).where(posts.c.id == post_id).values(**values, updated_at=func.now())
        )
        await session.execute(statement)
        if tag_names is not None:
            await session.execute(delete(post_tags).where(post_tags.c.post_id == post_id))
            await self._write_tags(session, post_id, tag_names)
        if media_items is not None:
            await session.execute(delete(media).where(media.c.post_id == post_id))
            await self._write_media(session, post_id, media_items)
        return await self._load(session, post_id)

    async def delete(self, session: AsyncSession, post_id: int) -> None:
        # Media and tag links go with the post (ON DELETE CASCADE).
        await session.execute(delete(posts).where(posts.c.id == post_id))

    async def delete_by_author(self, session: AsyncSession, author_id: int) -> list[int]:
        result = await session.execute(
            delete(posts).where(posts.c.author_id == author_id).returning(posts.c.id)
        )
        return [int(post_id) for post_id in result.scalars()]

    async def _load(self, session: AsyncSession, post_id: int) -> PostRecord:
        """The post just written, read back as readers will see it (same statement as ``get``)."""
        post = await self.get(session, post_id)
        if post is None:  # pragma: no cover - written in this very transaction
            raise LookupError(f"post {post_id} vanished inside its own transaction")
        return post

    async def _write_tags(self, session: AsyncSession, post_id: int, names: Sequence[str]) -> None:
        if not names:
            return
        keys = sorted({name.lower() for name in names})
        # DO UPDATE (a no-op write) rather than DO NOTHING so existing tags come back too; the
        # sorted order keeps concurrent writers from deadlocking on each other's tag rows.
        values = insert(tags).values([{"name": key} for key in keys])
        upsert = values.on_conflict_do_update(
            index_elements=[tags.c.name], set_={"name": values.excluded.name}
        ).returning(tags.c.id, tags.c.name)
        ids = {row.name: row.id for row in await session.execute(upsert)}
        links = [
            {"post_id": post_id, "tag_id": ids[name.lower()], "name": name, "ordinal": index}
            for index, name in enumerate(names)
        ]
        await session.execute(insert(post_tags).values(links))

    async def _write_media(
        self, session: AsyncSession, post_id: int, items: Sequence[MediaInput]
    ) -> None:
        if not items:
            return
        rows = [
            {
                "post_id": post_id,
                "url": item.url,
                "type": item.type,
                "position": item.position,
                "ordinal": index,
            }
            for index, item in enumerate(items)
        ]
        await session.execute(insert(media).values(rows))


def _post(row: RowMapping) -> PostRecord:
    return PostRecord(
        id=row["id"],
        author_id=row["author_id"],
        title=row["title"],
        content=row["content"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        media=tuple(
            MediaRecord(id=m["id"], url=m["url"], type=m["type"], position=m["position"])
            for m in row["media"]
        ),
        tags=tuple(TagRecord(id=t["id"], name=t["name"]) for t in row["tags"]),
    )


def _json_array(aggregated: ColumnElement[Any], source: Any) -> ScalarSelect[Any]:
    """``coalesce(json_agg(...), '[]')`` over ``source`` as a per-post scalar subquery."""
    empty: ColumnElement[Any] = literal_column("'[]'::json")
    # JSON as the result type: the asyncpg dialect hands back decoded lists.
    return (
        select(type_coerce(func.coalesce(aggregated, empty), JSON)).where(source).scalar_subquery()
    )


def _media_of(post_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    # By position, then the order the client gave (the contract's media order).
    item = func.json_build_object(
        "id", media.c.id, "url", media.c.url, "type", media.c.type, "position", media.c.position
    )
    ordered = func.json_agg(aggregate_order_by(item, media.c.position, media.c.ordinal))
    return _json_array(ordered, media.c.post_id == post_id)


def _tags_of(post_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    # The post's own spelling (post_tags.name), in the order it gave them.
    item = func.json_build_object("id", post_tags.c.tag_id, "name", post_tags.c.name)
    ordered = func.json_agg(aggregate_order_by(item, post_tags.c.ordinal))
    return _json_array(ordered, post_tags.c.post_id == post_id)


def _with_media_and_tags(query: Select[Any]) -> Select[Any]:
    return query.add_columns(
        _media_of(posts.c.id).label("media"), _tags_of(posts.c.id).label("tags")
    )


@cache
def _one_statement(*, for_update: bool) -> Select[Any]:
    query = _with_media_and_tags(select(posts)).where(posts.c.id == bindparam("post_id"))
    # Locks the post row only; its media and tag rows are replaced under that lock.
    return query.with_for_update(of=posts) if for_update else query


_Shape = tuple[bool, bool, bool, bool]


def _shape(where: PostFilter) -> _Shape:
    return (
        where.author_id is not None,
        where.tag is not None,
        where.created_after is not None,
        where.created_before is not None,
    )


def _params(where: PostFilter) -> dict[str, Any]:
    params: dict[str, Any] = {
        "author_id": where.author_id,
        "tag": None if where.tag is None else where.tag.lower(),
        "created_after": where.created_after,
        "created_before": where.created_before,
    }
    return {name: value for name, value in params.items() if value is not None}


def _filtered(
    query: Select[Any], author: bool, tag: bool, after: bool, before: bool
) -> Select[Any]:
    """The list's WHERE with bound parameters, so one statement serves every value."""
    if author:
        query = query.where(posts.c.author_id == bindparam("author_id"))
    if after:
        query = query.where(posts.c.created_at > bindparam("created_after"))
    if before:
        query = query.where(posts.c.created_at < bindparam("created_before"))
    if tag:
        tagged = (
            select(post_tags.c.post_id)
            .join(tags, tags.c.id == post_tags.c.tag_id)
            .where(tags.c.name == bindparam("tag"))
        )
        query = query.where(posts.c.id.in_(tagged))
    return query


@cache
def _page_statement(author: bool, tag: bool, after: bool, before: bool) -> Select[Any]:
    # The inner query reads only what the indexes hold (id, created_at, author_id), so counting
    # every match stays an index scan; the window count is taken before LIMIT/OFFSET. Whole rows,
    # media and tags are fetched for the page's posts only, not for every match or skipped row.
    matches = _filtered(
        select(posts.c.id, posts.c.created_at, func.count().over().label("total")),
        author, tag, after, before,
    )  # fmt: skip
    page = (
        matches.order_by(posts.c.created_at.desc(), posts.c.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
        .cte("page")
    )
    query = select(posts, page.c.total).join_from(page, posts, posts.c.id == page.c.id)
    return _with_media_and_tags(query).order_by(page.c.created_at.desc(), page.c.id.desc())


@cache
def _count_statement(author: bool, tag: bool, after: bool, before: bool) -> Select[Any]:
    return _filtered(select(func.count()).select_from(posts), author, tag, after, before)
