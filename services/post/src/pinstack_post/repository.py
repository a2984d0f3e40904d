"""SQL for posts, media and tags. The only module of the post service that talks to the database.

Every read of a page is a fixed number of statements whatever its size: the page, then its media
and its tags for all its posts at once (``_attach``), so a page of 50 costs what a page of 1 does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
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


def _post(row: RowMapping) -> PostRecord:
    return PostRecord(
        id=row["id"],
        author_id=row["author_id"],
        title=row["title"],
        content=row["content"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


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
            insert(posts).values(author_id=author_id, title=title, content=content).returning(posts)
        )
        post = _post((await session.execute(statement)).mappings().one())
        await self._write_tags(session, post.id, tag_names)
        await self._write_media(session, post.id, media_items)
        return (await self._attach(session, [post]))[0]

    async def get(
        self, session: AsyncSession, post_id: int, *, for_update: bool = False
    ) -> PostRecord | None:
        query = select(posts).where(posts.c.id == post_id)
        if for_update:
            query = query.with_for_update()
        row = (await session.execute(query)).mappings().first()
        if row is None:
            return None
        return (await self._attach(session, [_post(row)]))[0]

    async def find(
        self, session: AsyncSession, *, where: PostFilter, offset: int, limit: int
    ) -> tuple[list[PostRecord], int]:
        """One page, newest first, and the number of every match: four statements."""
        total = (
            await session.execute(_filtered(select(func.count()).select_from(posts), where))
        ).scalar_one()
        query = _filtered(select(posts), where).order_by(
            posts.c.created_at.desc(), posts.c.id.desc()
        )
        rows = (await session.execute(query.offset(offset).limit(limit))).mappings()
        page = [_post(row) for row in rows]
        return await self._attach(session, page), int(total)

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
            update(posts)
            .where(posts.c.id == post_id)
            .values(**values, updated_at=func.now())
            .returning(posts)
        )
        post = _post((await session.execute(statement)).mappings().one())
        if tag_names is not None:
            await session.execute(delete(post_tags).where(post_tags.c.post_id == post_id))
            await self._write_tags(session, post_id, tag_names)
        if media_items is not None:
            await session.execute(delete(media).where(media.c.post_id == post_id))
            await self._write_media(session, post_id, media_items)
        return (await self._attach(session, [post]))[0]

    async def delete(self, session: AsyncSession, post_id: int) -> None:
        # Media and tag links go with the post (ON DELETE CASCADE).
        await session.execute(delete(posts).where(posts.c.id == post_id))

    async def delete_by_author(self, session: AsyncSession, author_id: int) -> list[int]:
        result = await session.execute(
            delete(posts).where(posts.c.author_id == author_id).returning(posts.c.id)
        )
        return [int(post_id) for post_id in result.scalars()]

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

    async def _attach(self, session: AsyncSession, page: list[PostRecord]) -> list[PostRecord]:
        """Media and tags of a whole page in two statements, whatever its size."""
        if not page:
            return []
        ids = [post.id for post in page]
        media_of: dict[int, list[MediaRecord]] = defaultdict(list)
        media_rows = await session.execute(
            select(media)
            .where(media.c.post_id.in_(ids))
            .order_by(media.c.post_id, media.c.position, media.c.ordinal)
        )
        for row in media_rows.mappings():
            media_of[row["post_id"]].append(
                MediaRecord(
                    id=row["id"], url=row["url"], type=row["type"], position=row["position"]
                )
            )
        tags_of: dict[int, list[TagRecord]] = defaultdict(list)
        tag_rows = await session.execute(
            select(post_tags.c.post_id, post_tags.c.tag_id, post_tags.c.name)
            .where(post_tags.c.post_id.in_(ids))
            .order_by(post_tags.c.post_id, post_tags.c.ordinal)
        )
        for link in tag_rows:
            tags_of[link.post_id].append(TagRecord(id=link.tag_id, name=link.name))
        return [
            PostRecord(
                id=post.id,
                author_id=post.author_id,
                title=post.title,
                content=post.content,
                created_at=post.created_at,
                updated_at=post.updated_at,
                media=tuple(media_of[post.id]),
                tags=tuple(tags_of[post.id]),
            )
            for post in page
        ]


def _filtered(query: Select[Any], where: PostFilter) -> Select[Any]:
    if where.author_id is not None:
        query = query.where(posts.c.author_id == where.author_id)
    if where.created_after is not None:
        query = query.where(posts.c.created_at > where.created_after)
    if where.created_before is not None:
        query = query.where(posts.c.created_at < where.created_before)
    if where.tag is not None:
        tagged = (
            select(post_tags.c.post_id)
            .join(tags, tags.c.id == post_tags.c.tag_id)
            .where(tags.c.name == where.tag.lower())
        )
        query = query.where(posts.c.id.in_(tagged))
    return query
