"""Authors as the post service sees them: profiles from the user service, cached in Redis.

A page of posts needs its authors' profiles; :meth:`AuthorDirectory.get_many` answers from the
cache and asks the user service for the rest in ONE batched ``GetUsers`` call, so the cost of a
page does not grow with its size. An id missing from the answer is an author who is gone.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import TypeAdapter

from pinstack_common.cache import Cache
from pinstack_common.grpc.user_directory import GrpcUserDirectory
from pinstack_common.profiles import Profile

__all__ = ["AuthorDirectory"]

# Typed both ways (``json.loads`` answers Any), and a cached entry is checked when read.
_PROFILE = TypeAdapter(Profile)


def _key(author_id: int) -> str:
    # Not ``author:<id>``: an older release cached a summary without timestamps there.
    return f"author-profile:{author_id}"


class AuthorDirectory:
    def __init__(self, *, users: GrpcUserDirectory, cache: Cache) -> None:
        self._users = users
        self._cache = cache

    async def get_many(self, ids: Iterable[int]) -> dict[int, Profile]:
        wanted = sorted(set(ids))
        found: dict[int, Profile] = {}
        for author_id, raw in zip(
            wanted, await self._cache.get_many([_key(i) for i in wanted]), strict=True
        ):
            if raw is not None:
                found[author_id] = _PROFILE.validate_json(raw)
        missing = [author_id for author_id in wanted if author_id not in found]
        if not missing:
            return found
        # Posts are useless without their authors: the user service's failure is ours.
        fetched = {user.id: user for user in await self._users.get_many(missing)}
        await self._cache.set_many(
            {_key(i): _PROFILE.dump_json(author) for i, author in fetched.items()}
        )
        return found | fetched

    async def get(self, author_id: int) -> Profile | None:
        return (await self.get_many([author_id])).get(author_id)

    async def forget(self, author_id: int) -> None:
        """Drop the cached profile, so the next read shows the author's current one."""
        await self._cache.delete(_key(author_id))
