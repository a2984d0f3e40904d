"""Authors as the post service sees them: summaries from the user service, cached in Redis.

A page of posts needs its authors' profiles; :meth:`AuthorDirectory.get_many` answers from the
cache and asks the user service for the rest in ONE batched ``GetUsers`` call, so the cost of a
page does not grow with its size. An id missing from the answer is an author who is gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from pydantic import TypeAdapter

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.cache import Cache
from pinstack_common.grpc_client import domain_error

__all__ = ["AuthorDirectory", "AuthorRecord"]


@dataclass(frozen=True, slots=True)
class AuthorRecord:
    id: int
    username: str
    email: str
    full_name: str
    bio: str
    avatar_url: str


# Typed both ways (``json.loads`` answers Any), and a cached entry is checked when read.
_RECORD = TypeAdapter(AuthorRecord)


def _key(author_id: int) -> str:
    return f"author:{author_id}"


class AuthorDirectory:
    def __init__(self, *, users: user_pb2_grpc.UserServiceAsyncStub, cache: Cache) -> None:
        self._users = users
        self._cache = cache

    async def get_many(self, ids: Iterable[int]) -> dict[int, AuthorRecord]:
        wanted = sorted(set(ids))
        found: dict[int, AuthorRecord] = {}
        for author_id, raw in zip(
            wanted, await self._cache.get_many([_key(i) for i in wanted]), strict=True
        ):
            if raw is not None:
                found[author_id] = _RECORD.validate_json(raw)
        missing = [author_id for author_id in wanted if author_id not in found]
        if not missing:
            return found
        try:
            answer = await self._users.GetUsers(user_pb2.GetUsersRequest(ids=missing))
        except grpc.aio.AioRpcError as error:
            # Posts are useless without their authors: the user service's failure is ours.
            raise domain_error(error) from error
        fetched = {
            user.id: AuthorRecord(
                id=user.id,
                username=user.username,
                email=user.email,
                full_name=user.full_name,
                bio=user.bio,
                avatar_url=user.avatar_url,
            )
            for user in answer.users
        }
        await self._cache.set_many(
            {_key(i): _RECORD.dump_json(author) for i, author in fetched.items()}
        )
        return found | fetched

    async def get(self, author_id: int) -> AuthorRecord | None:
        return (await self.get_many([author_id])).get(author_id)

    async def forget(self, author_id: int) -> None:
        """Drop the cached summary, so the next read shows the author's current profile."""
        await self._cache.delete(_key(author_id))
