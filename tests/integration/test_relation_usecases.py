"""Relation use cases against real PostgreSQL (no gRPC, a fake user directory)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from pinstack.relation.v1 import events_pb2
from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_common.db.database import Database
from pinstack_common.db.migrations import upgrade
from pinstack_common.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from pinstack_common.events.outbox import Outbox
from pinstack_common.profiles import Profile
from pinstack_common.security.tokens import Identity
from pinstack_devinfra.postgres import PostgresServer
from pinstack_relation.app import MIGRATIONS_PACKAGE
from pinstack_relation.events import RelationEvents, handlers
from pinstack_relation.models import outbox
from pinstack_relation.repository import RelationRepository
from pinstack_relation.usecases import RelationUseCases
from tests.conftest import new_database

_ids = itertools.count(100)


class FakeUsers:
    """Every id below 10**9 exists; counts batched lookups."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def exists(self, user_id: int) -> bool:
        return user_id < 10**9

    async def get_many(self, ids: Sequence[int]) -> list[Profile]:
        self.batches.append(list(ids))
        return [_profile(i) for i in reversed(ids)]


def _profile(user_id: int) -> Profile:
    joined = datetime(2026, 1, 1, tzinfo=UTC)
    return Profile(
        id=user_id,
        username=f"user{user_id}",
        email=f"user{user_id}@example.com",
        full_name="",
        bio="",
        avatar_url="",
        created_at=joined,
        updated_at=joined,
    )


def me(user_id: int) -> Identity:
    return Identity(user_id=user_id, session_id="s")


@pytest.fixture(scope="module")
def relation_url(postgres_server: PostgresServer) -> str:
    url = new_database(postgres_server, "relation")
    upgrade(package=MIGRATIONS_PACKAGE, url=url)
    return url


@pytest.fixture
async def database(relation_url: str) -> AsyncIterator[Database]:
    database = Database(url=relation_url, component="test")
    yield database
    await database.close()


def build(database: Database, users: FakeUsers | None = None) -> RelationUseCases:
    return RelationUseCases(
        database=database,
        repository=RelationRepository(),
        events=RelationEvents(outbox=Outbox(table=outbox)),
        users=users or FakeUsers(),
    )


async def events_for(database: Database, followee: int) -> list[str]:
    async with database.read() as session:
        rows = await session.execute(
            select(outbox.c.event_type).where(outbox.c.key == str(followee)).order_by(outbox.c.seq)
        )
        return [row[0] for row in rows]


async def test_follow_writes_event_in_same_transaction(database: Database) -> None:
    use_cases = build(database)
    a, b = next(_ids), next(_ids)
    await use_cases.follow(caller=me(a), followee_id=b)
    with pytest.raises(AlreadyExistsError, match="already following this user"):
        await use_cases.follow(caller=me(a), followee_id=b)
    # The failed second follow rolled back: one event only.
    assert await events_for(database, b) == ["pinstack.relation.v1.FollowCreated"]
    await use_cases.unfollow(caller=me(a), followee_id=b)
    with pytest.raises(NotFoundError, match="follow relation not found"):
        await use_cases.unfollow(caller=me(a), followee_id=b)
    assert (await events_for(database, b))[-1] == "pinstack.relation.v1.FollowDeleted"


async def test_rules(database: Database) -> None:
    use_cases = build(database)
    with pytest.raises(InvalidArgumentError, match="cannot follow yourself"):
        await use_cases.follow(caller=me(5), followee_id=5)
    with pytest.raises(InvalidArgumentError, match="cannot unfollow yourself"):
        await use_cases.unfollow(caller=me(5), followee_id=5)
    with pytest.raises(NotFoundError, match="user not found"):
        await use_cases.follow(caller=me(5), followee_id=10**10)
    with pytest.raises(NotFoundError, match="user not found"):
        await use_cases.followers(user_id=10**10, page=1, limit=20)
    with pytest.raises(InvalidArgumentError, match="validation failed"):
        await use_cases.followers(user_id=5, page=1, limit=101)


async def test_one_batched_lookup_per_page_in_page_order(database: Database) -> None:
    users = FakeUsers()
    use_cases = build(database, users)
    star = next(_ids)
    fans = [next(_ids) for _ in range(3)]
    for fan in fans:
        await use_cases.follow(caller=me(fan), followee_id=star)
    page, total = await use_cases.followers(user_id=star, page=1, limit=2)
    assert total == 3
    assert [u.id for u in page] == [fans[2], fans[1]]
    assert users.batches == [[fans[2], fans[1]]]


async def test_forget_user_removes_both_directions(database: Database) -> None:
    use_cases = build(database)
    gone, x, y = next(_ids), next(_ids), next(_ids)
    await use_cases.follow(caller=me(gone), followee_id=x)
    await use_cases.follow(caller=me(y), followee_id=gone)
    await use_cases.follow(caller=me(y), followee_id=x)
    on_user_deleted = handlers(forget_user=use_cases.forget_user)[UserDeleted]
    async with database.transaction() as session:
        await on_user_deleted(UserDeleted(user_id=gone), session)
    assert (await use_cases.followees(user_id=y, page=1, limit=20))[1] == 1
    assert (await use_cases.followers(user_id=x, page=1, limit=20))[1] == 1
    assert (await events_for(database, x))[-1] == events_pb2.FollowDeleted.DESCRIPTOR.full_name
    assert await use_cases.forget_user(gone) == 0
