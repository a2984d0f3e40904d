"""SQL for profiles. The only module of the user service that talks to the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from pinstack_common.errors import AlreadyExistsError
from pinstack_common.profiles import Profile
from pinstack_common.usernames import canonical_username
from pinstack_user.models import users

__all__ = ["UserRepository"]


def _record(row: RowMapping) -> Profile:
    return Profile(**{name: row[name] for name in Profile.__slots__})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UserRepository:
    """Queries over ``users`` within the caller's session (the unit of work)."""

    async def insert(self, session: AsyncSession, **values: str) -> Profile:
        await self._ensure_unique(session, username=values["username"], email=values["email"])
        values["username_canonical"] = canonical_username(values["username"])
        try:
            async with session.begin_nested():
                row = (
                    (await session.execute(insert(users).values(**values).returning(users)))
                    .mappings()
                    .one()
                )
        except IntegrityError as error:
            # Lost a race with a concurrent registration of the same name.
            raise _conflict(str(error.orig)) from error
        return _record(row)

    async def get(self, session: AsyncSession, user_id: int) -> Profile | None:
        row = (await session.execute(select(users).where(users.c.id == user_id))).mappings().first()
        return _record(row) if row else None

    async def get_many(self, session: AsyncSession, ids: Sequence[int]) -> list[Profile]:
        if not ids:
            return []
        rows = (await session.execute(select(users).where(users.c.id.in_(set(ids))))).mappings()
        return [_record(row) for row in rows]

    async def get_by_username(self, session: AsyncSession, username: str) -> Profile | None:
        query = select(users).where(users.c.username_canonical == canonical_username(username))
        row = (await session.execute(query)).mappings().first()
        return _record(row) if row else None

    async def get_by_email(self, session: AsyncSession, email: str) -> Profile | None:
        query = select(users).where(func.lower(users.c.email) == email.lower())
        row = (await session.execute(query)).mappings().first()
        return _record(row) if row else None

    async def search(
        self, session: AsyncSession, *, query: str, offset: int, limit: int
    ) -> tuple[list[Profile], int]:
        pattern = f"%{_escape_like(query)}%"
        canonical = f"%{_escape_like(canonical_username(query))}%"
        match = or_(
            users.c.username.ilike(pattern, escape="\\"),
            users.c.username_canonical.like(canonical, escape="\\"),  # fullwidth "AD" finds "admin"
            users.c.full_name.ilike(pattern, escape="\\"),
        )
        total = (
            await session.execute(select(func.count()).select_from(users).where(match))
        ).scalar_one()
        rows = await session.execute(
            select(users).where(match).order_by(users.c.id).offset(offset).limit(limit)
        )
        return [_record(row) for row in rows.mappings()], int(total)

    async def update(self, session: AsyncSession, user_id: int, **values: Any) -> Profile | None:
        await self._ensure_unique(
            session, username=values.get("username"), email=values.get("email"), exclude_id=user_id
        )
        if "username" in values:
            values["username_canonical"] = canonical_username(values["username"])
        statement = (
            update(users)
            .where(users.c.id == user_id)
            .values(**values, updated_at=func.now())
            .returning(users)
        )
        try:
            async with session.begin_nested():
                row = (await session.execute(statement)).mappings().first()
        except IntegrityError as error:
            raise _conflict(str(error.orig)) from error
        return _record(row) if row else None

    async def delete(self, session: AsyncSession, user_id: int) -> bool:
        result = await session.execute(
            delete(users).where(users.c.id == user_id).returning(users.c.id)
        )
        return result.first() is not None

    async def _ensure_unique(
        self,
        session: AsyncSession,
        *,
        username: str | None,
        email: str | None,
        exclude_id: int | None = None,
    ) -> None:
        """Answer 409 with the contract's message before the unique index has to."""
        checks: list[tuple[ColumnElement[bool], str]] = []
        if username is not None:
            same_name = users.c.username_canonical == canonical_username(username)
            checks.append((same_name, "username already exists"))
        if email is not None:
            checks.append((func.lower(users.c.email) == email.lower(), "email already exists"))
        for same, message in checks:
            query = select(users.c.id).where(same)
            if exclude_id is not None:
                query = query.where(users.c.id != exclude_id)
            if (await session.execute(query.limit(1))).first() is not None:
                raise AlreadyExistsError(message)


def _conflict(detail: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        "email already exists" if "email" in detail else "username already exists"
    )
