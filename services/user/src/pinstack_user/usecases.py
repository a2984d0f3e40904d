"""What the user service does: each method is one use case in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pinstack_common.db.database import Database
from pinstack_common.errors import InvalidArgumentError, NotFoundError
from pinstack_common.profiles import Profile
from pinstack_common.security.authorization import require_owner
from pinstack_common.security.tokens import Identity
from pinstack_common.validation import (
    PAGE_LIMIT_MAX,
    USERNAME_MAX,
    VALIDATION_FAILED,
    positive_id,
    validate_avatar_url,
    validate_email,
    validate_username,
)
from pinstack_user.events import UserEvents
from pinstack_user.repository import UserRepository

__all__ = ["ProfileChanges", "UserUseCases"]

FULL_NAME_MAX = 255
BIO_MAX = 1000

ProfileChanges = dict[str, str]


@dataclass(kw_only=True, eq=False)
class UserUseCases:
    database: Database
    repository: UserRepository
    events: UserEvents
    max_page: int = PAGE_LIMIT_MAX

    async def create(
        self, *, username: str, email: str, full_name: str, bio: str, avatar_url: str
    ) -> Profile:
        username = validate_username(username)  # stored as typed, in NFC
        validate_email(email)
        require_max_length(full_name, FULL_NAME_MAX)
        require_max_length(bio, BIO_MAX)
        if avatar_url:
            validate_avatar_url(avatar_url)
        async with self.database.transaction() as session:
            user = await self.repository.insert(
                session,
                username=username,
                email=email,
                full_name=full_name,
                bio=bio,
                avatar_url=avatar_url,
            )
            await self.events.created(session, user)
        return user

    async def get(self, user_id: int) -> Profile:
        positive_id(user_id)
        async with self.database.read() as session:
            return _found(await self.repository.get(session, user_id))

    async def get_by_username(self, username: str) -> Profile:
        """Found by the canonical form, so any spelling of the name finds it. Only the length is
        checked: a name registered under older rules is still found."""
        if not username or len(username) > USERNAME_MAX:
            raise InvalidArgumentError(VALIDATION_FAILED)
        async with self.database.read() as session:
            return _found(await self.repository.get_by_username(session, username))

    async def get_by_email(self, email: str) -> Profile:
        validate_email(email)
        async with self.database.read() as session:
            return _found(await self.repository.get_by_email(session, email))

    async def get_many(self, ids: Sequence[int]) -> list[Profile]:
        if len(ids) > 1000:
            raise InvalidArgumentError(VALIDATION_FAILED)
        async with self.database.read() as session:
            return await self.repository.get_many(session, ids)

    async def search(self, *, query: str, page: int, limit: int) -> tuple[list[Profile], int]:
        query = query.strip()
        if not query:
            raise InvalidArgumentError("invalid search query")
        if len(query) > 100 or page < 1 or not 1 <= limit <= self.max_page:
            raise InvalidArgumentError(VALIDATION_FAILED)
        async with self.database.read() as session:
            return await self.repository.search(
                session, query=query, offset=(page - 1) * limit, limit=limit
            )

    async def update(self, *, caller: Identity, user_id: int, changes: ProfileChanges) -> Profile:
        positive_id(user_id)
        changes = dict(changes)
        if "username" in changes:
            changes["username"] = validate_username(changes["username"])
        if "email" in changes:
            validate_email(changes["email"])
        require_max_length(changes.get("full_name", ""), FULL_NAME_MAX)
        require_max_length(changes.get("bio", ""), BIO_MAX)
        return await self._change(caller=caller, user_id=user_id, values=dict(changes))

    async def update_avatar(self, *, caller: Identity, user_id: int, avatar_url: str) -> Profile:
        validate_avatar_url(avatar_url)
        return await self._change(caller=caller, user_id=user_id, values={"avatar_url": avatar_url})

    async def delete(self, *, caller: Identity, user_id: int) -> None:
        positive_id(user_id)
        async with self.database.transaction() as session:
            if await self.repository.get(session, user_id) is None:
                raise NotFoundError("user not found")
            require_owner(caller, user_id)
            await self.repository.delete(session, user_id)
            await self.events.deleted(session, user_id)

    async def _change(self, *, caller: Identity, user_id: int, values: dict[str, Any]) -> Profile:
        async with self.database.transaction() as session:
            existing = _found(await self.repository.get(session, user_id))
            require_owner(caller, user_id)
            if not values:
                return existing
            user = _found(await self.repository.update(session, user_id, **values))
            await self.events.updated(session, user)
        return user


def require_max_length(value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidArgumentError(VALIDATION_FAILED)


def _found(user: Profile | None) -> Profile:
    if user is None:
        raise NotFoundError("user not found")
    return user
