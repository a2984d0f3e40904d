"""The user service's use cases against a real PostgreSQL, one fresh database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from pinstack.user.v1 import events_pb2
from pinstack_common.db import migrations
from pinstack_common.db.database import Database
from pinstack_common.errors import (
    AlreadyExistsError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
)
from pinstack_common.events import Outbox
from pinstack_common.security.tokens import Identity
from pinstack_user.events import UserEvents
from pinstack_user.models import outbox
from pinstack_user.repository import UserRepository
from pinstack_user.usecases import UserUseCases


@pytest.fixture
async def users(fresh_database: str) -> AsyncIterator[UserUseCases]:
    migrations.upgrade(package="pinstack_user", url=fresh_database)
    database = Database(url=fresh_database, component="user-test")
    try:
        yield UserUseCases(
            database=database,
            repository=UserRepository(),
            events=UserEvents(outbox=Outbox(table=outbox)),
        )
    finally:
        await database.close()


def caller(user_id: int) -> Identity:
    return Identity(user_id=user_id, session_id="s")


async def create(users: UserUseCases, name: str, **extra: str) -> int:
    user = await users.create(
        username=name,
        email=f"{name}@example.com",
        full_name=extra.get("full_name", ""),
        bio="",
        avatar_url="",
    )
    return user.id


async def outbox_types(users: UserUseCases) -> list[str]:
    async with users.database.read() as session:
        rows = await session.execute(select(outbox.c.event_type).order_by(outbox.c.created_at))
        return list(rows.scalars())


async def test_usernames_and_emails_are_unique_regardless_of_case(users: UserUseCases) -> None:
    await create(users, "Ada")
    with pytest.raises(AlreadyExistsError, match=r"^username already exists$"):
        await users.create(
            username="ADA", email="other@example.com", full_name="", bio="", avatar_url=""
        )
    with pytest.raises(AlreadyExistsError, match=r"^email already exists$"):
        await users.create(
            username="other", email="ADA@EXAMPLE.COM", full_name="", bio="", avatar_url=""
        )
    found = await users.get_by_username("ada")
    assert found.username == "Ada"  # spelling kept as given


async def test_every_change_writes_its_event_in_the_same_transaction(users: UserUseCases) -> None:
    user_id = await create(users, "grace")
    await users.update(caller=caller(user_id), user_id=user_id, changes={"bio": "compilers"})
    await users.delete(caller=caller(user_id), user_id=user_id)
    assert await outbox_types(users) == [
        events_pb2.UserCreated.DESCRIPTOR.full_name,
        events_pb2.UserUpdated.DESCRIPTOR.full_name,
        events_pb2.UserDeleted.DESCRIPTOR.full_name,
    ]


async def test_a_failed_change_writes_no_event(users: UserUseCases) -> None:
    first, second = await create(users, "alan"), await create(users, "barbara")
    with pytest.raises(AlreadyExistsError):
        await users.update(caller=caller(second), user_id=second, changes={"username": "ALAN"})
    with pytest.raises(ForbiddenError):
        await users.delete(caller=caller(second), user_id=first)
    assert len(await outbox_types(users)) == 2  # the two creations only


async def test_search_counts_every_match_in_a_stable_order(users: UserUseCases) -> None:
    ids = [await create(users, f"knuth{i}") for i in range(5)]
    await create(users, "someone", full_name="Donald KNUTH fan")
    page1, total = await users.search(query="knuth", page=1, limit=4)
    page2, _ = await users.search(query="knuth", page=2, limit=4)
    assert total == 6
    assert [u.id for u in page1 + page2][:5] == ids
    with pytest.raises(InvalidArgumentError, match=r"^invalid search query$"):
        await users.search(query="  ", page=1, limit=10)
    # LIKE wildcards in the query are matched literally.
    assert (await users.search(query="%", page=1, limit=10))[1] == 0


async def test_missing_users(users: UserUseCases) -> None:
    with pytest.raises(NotFoundError, match=r"^user not found$"):
        await users.get(424242)
    with pytest.raises(NotFoundError, match=r"^user not found$"):
        await users.delete(caller=caller(424242), user_id=424242)
    assert await users.get_many([424242]) == []
