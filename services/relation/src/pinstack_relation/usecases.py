"""What the relation service does: each method is one use case in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_common.db.database import Database
from pinstack_common.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from pinstack_common.profiles import Profile
from pinstack_common.security.tokens import Identity
from pinstack_common.validation import PAGE_LIMIT_MAX, VALIDATION_FAILED, positive_id
from pinstack_relation.clients import UserDirectory
from pinstack_relation.events import RelationEvents
from pinstack_relation.metrics import FOLLOWS
from pinstack_relation.repository import RelationRepository

__all__ = ["RelationUseCases"]


@dataclass(kw_only=True, eq=False)
class RelationUseCases:
    database: Database
    repository: RelationRepository
    events: RelationEvents
    users: UserDirectory
    max_limit: int = PAGE_LIMIT_MAX

    async def follow(self, *, caller: Identity, followee_id: int) -> None:
        positive_id(followee_id)
        if followee_id == caller.user_id:
            raise InvalidArgumentError("cannot follow yourself")
        # Checked before the transaction: no connection is held while the user service answers.
        if not await self.users.exists(followee_id):
            raise NotFoundError("user not found")
        async with self.database.transaction() as session:
            created = await self.repository.insert(
                session, follower_id=caller.user_id, followee_id=followee_id
            )
            if not created:
                raise AlreadyExistsError("already following this user")
            await self.events.created(session, follower_id=caller.user_id, followee_id=followee_id)
        FOLLOWS.inc()

    async def unfollow(self, *, caller: Identity, followee_id: int) -> None:
        positive_id(followee_id)
        if followee_id == caller.user_id:
            raise InvalidArgumentError("cannot unfollow yourself")
        async with self.database.transaction() as session:
            removed = await self.repository.delete(
                session, follower_id=caller.user_id, followee_id=followee_id
            )
            if not removed:
                raise NotFoundError("follow relation not found")
            await self.events.deleted(session, follower_id=caller.user_id, followee_id=followee_id)

    async def followers(self, *, user_id: int, page: int, limit: int) -> tuple[list[Profile], int]:
        return await self._list(user_id=user_id, page=page, limit=limit, followers=True)

    async def followees(self, *, user_id: int, page: int, limit: int) -> tuple[list[Profile], int]:
        return await self._list(user_id=user_id, page=page, limit=limit, followers=False)

    async def forget_user(self, user_id: int, session: AsyncSession | None = None) -> int:
        """Remove every follow from or to ``user_id`` (user deleted); idempotent.

        Runs in ``session`` when given (the event consumer's transaction, which also records
        the event id), else in a transaction of its own.
        """
        if session is None:
            async with self.database.transaction() as own:
                return await self.forget_user(user_id, session=own)
        removed = await self.repository.delete_user(session, user_id)
        for follower_id, followee_id in removed:
            await self.events.deleted(session, follower_id=follower_id, followee_id=followee_id)
        return len(removed)

    async def _list(
        self, *, user_id: int, page: int, limit: int, followers: bool
    ) -> tuple[list[Profile], int]:
        positive_id(user_id)
        if page < 1 or not 1 <= limit <= self.max_limit:
            raise InvalidArgumentError(VALIDATION_FAILED)
        async with self.database.read() as session:
            ids, total = await self.repository.related(
                session,
                user_id=user_id,
                followers=followers,
                offset=(page - 1) * limit,
                limit=limit,
            )
        # An unknown user has no follows; only then is the extra lookup needed for the 404.
        if total == 0 and not await self.users.exists(user_id):
            raise NotFoundError("user not found")
        # One batched lookup per page, reassembled in the page's order.
        by_id = {user.id: user for user in await self.users.get_many(ids)}
        return [by_id[i] for i in ids if i in by_id], total
