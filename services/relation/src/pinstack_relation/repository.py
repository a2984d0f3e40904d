"""SQL for follows. The only module of the relation service that talks to the database."""

from __future__ import annotations

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_relation.models import follows

__all__ = ["Follow", "RelationRepository"]

Follow = tuple[int, int]  # (follower_id, followee_id)


class RelationRepository:
    """Queries over ``follows`` within the caller's session (the unit of work)."""

    async def insert(self, session: AsyncSession, *, follower_id: int, followee_id: int) -> bool:
        """Add the follow; False if it already existed (the primary key decides, race-free)."""
        statement = (
            insert(follows)
            .values(follower_id=follower_id, followee_id=followee_id)
            .on_conflict_do_nothing()
            .returning(follows.c.follower_id)
        )
        return (await session.execute(statement)).first() is not None

    async def delete(self, session: AsyncSession, *, follower_id: int, followee_id: int) -> bool:
        statement = (
            delete(follows)
            .where(follows.c.follower_id == follower_id, follows.c.followee_id == followee_id)
            .returning(follows.c.follower_id)
        )
        return (await session.execute(statement)).first() is not None

    async def delete_user(self, session: AsyncSession, user_id: int) -> list[Follow]:
        """Remove every follow from or to ``user_id``; return the removed pairs."""
        statement = (
            delete(follows)
            .where(or_(follows.c.follower_id == user_id, follows.c.followee_id == user_id))
            .returning(follows.c.follower_id, follows.c.followee_id)
        )
        return [(int(a), int(b)) for a, b in (await session.execute(statement)).all()]

    async def related(
        self, session: AsyncSession, *, user_id: int, followers: bool, offset: int, limit: int
    ) -> tuple[list[int], int]:
        """Ids of those who follow ``user_id`` (``followers``) or whom it follows, newest follow
        first, and their total."""
        match, other = (
            (follows.c.followee_id, follows.c.follower_id)
            if followers
            else (follows.c.follower_id, follows.c.followee_id)
        )
        total = (
            await session.execute(select(func.count()).select_from(follows).where(match == user_id))
        ).scalar_one()
        # created_at then the other id: a stable order, so pages never repeat or skip rows.
        rows = await session.execute(
            select(other)
            .where(match == user_id)
            .order_by(follows.c.created_at.desc(), other.desc())
            .offset(offset)
            .limit(limit)
        )
        return [int(row[0]) for row in rows.all()], int(total)
