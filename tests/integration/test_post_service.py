"""The post service against real PostgreSQL and Redis, with a stand-in UserService over gRPC.

The stand-in is a real gRPC server (the platform's ``GrpcServer``), so author lookups go over the
wire exactly as in production and every ``GetUsers`` call can be counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import event, text

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.db import migrations
from pinstack_common.errors import ForbiddenError, InvalidArgumentError, NotFoundError
from pinstack_common.events import InProcessTransport
from pinstack_common.grpc.server import GrpcServer
from pinstack_common.observability.metrics import CACHE_REQUESTS
from pinstack_common.security.tokens import Identity
from pinstack_devinfra.ports import free_port
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer
from pinstack_post.app import PostComponent
from pinstack_post.repository import MediaInput, PostFilter
from pinstack_post.settings import PostSettings
from pinstack_post.usecases import PostChanges, PostUseCases
from tests.conftest import new_database
from tests.integration.fake_users import start_user_server

TOKEN = "test-internal-token"


@dataclass
class FakeUsers(user_pb2_grpc.UserServiceServicer):
    """Profiles in a dict; counts the batched lookups the post service makes."""

    profiles: dict[int, user_pb2.User] = field(default_factory=dict)
    get_users_calls: list[list[int]] = field(default_factory=list)

    def add(self, user_id: int, **fields: Any) -> Identity:
        self.profiles[user_id] = user_pb2.User(
            id=user_id,
            username=fields.get("username", f"user{user_id}"),
            email=f"user{user_id}@example.com",
            full_name=fields.get("full_name", ""),
            avatar_url=fields.get("avatar_url", ""),
        )
        return Identity(user_id=user_id, session_id="s")

    async def GetUsers(  # noqa: N802 - fixed by the proto
        self, request: user_pb2.GetUsersRequest, context: object
    ) -> user_pb2.GetUsersResponse:
        self.get_users_calls.append(list(request.ids))
        return user_pb2.GetUsersResponse(
            users=[self.profiles[i] for i in request.ids if i in self.profiles]
        )


@dataclass
class Harness:
    component: PostComponent
    users: FakeUsers

    @property
    def posts(self) -> PostUseCases:
        assert self.component.use_cases is not None
        return self.component.use_cases

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """SQL statements and GetUsers calls made inside the block."""
        assert self.component.database is not None
        engine = self.component.database.engine.sync_engine
        statements: list[str] = []

        def record(*args: Any) -> None:
            # The outbox relay shares the engine and runs on its own schedule; it is not part
            # of serving a read.
            if "outbox" not in str(args[2]):
                statements.append(str(args[2]))

        self.users.get_users_calls.clear()
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)


async def start_harness(database_url: str, redis_url: str) -> tuple[Harness, GrpcServer]:
    await asyncio.to_thread(migrations.upgrade, package="pinstack_post", url=database_url)
    users = FakeUsers()  # type: ignore[abstract]  # only the RPCs the post service uses
    user_server = await start_user_server(users, internal_token=TOKEN)
    settings = PostSettings(
        database_url=database_url,
        redis_url=redis_url,
        grpc_port=0,
        user_addr=user_server.address,
        auth_addr=f"127.0.0.1:{free_port()}",  # never called: use cases get Identity directly
        internal_token=TOKEN,
    )
    # Events are covered by the events tiers; here a private in-process bus.
    component = PostComponent(settings=settings, transport=InProcessTransport())
    await component.start()
    return Harness(component=component, users=users), user_server


@pytest.fixture
async def harness(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> AsyncIterator[Harness]:
    # Every test starts its ids at 1 on a fresh database: start from an empty cache too.
    flush = Redis.from_url(redis_server.url)
    await flush.flushdb()
    await flush.aclose()
    built, user_server = await start_harness(
        new_database(postgres_server, "post"), redis_server.url
    )
    try:
        yield built
    finally:
        await built.component.stop()
        await user_server.stop(grace=0)


async def test_create_get_roundtrip_orders_media_and_keeps_tag_spelling(harness: Harness) -> None:
    alice = harness.users.add(1, username="alice", full_name="Alice A")
    created = await harness.posts.create(
        caller=alice,
        title="Hello",
        content="world",
        tags=[" Python ", "python", "Go"],
        media=[
            MediaInput(url="https://x.example/b.png", type="image", position=2),
            MediaInput(url="https://x.example/a.mp4", type="video", position=1),
            MediaInput(url="https://x.example/c.png", type="image", position=2),
        ],
    )
    assert [t.name for t in created.post.tags] == ["Python", "Go"]
    assert [m.url[-5:] for m in created.post.media] == ["a.mp4", "b.png", "c.png"]
    fetched = await harness.posts.get(created.post.id)
    assert fetched.post == created.post
    assert fetched.author.username == "alice"


async def test_tag_ids_are_shared_regardless_of_case(harness: Harness) -> None:
    alice = harness.users.add(1)
    first = await harness.posts.create(caller=alice, title="a", tags=["Rust"])
    second = await harness.posts.create(caller=alice, title="b", tags=["rUST"])
    assert first.post.tags[0].id == second.post.tags[0].id
    assert second.post.tags[0].name == "rUST"


async def test_update_replaces_present_fields_and_clears_lists(harness: Harness) -> None:
    alice = harness.users.add(1)
    created = await harness.posts.create(
        caller=alice,
        title="t",
        content="c",
        tags=["a"],
        media=[MediaInput(url="https://x.example/a.png", type="image", position=1)],
    )
    post_id = created.post.id
    await harness.posts.get(post_id)  # cached now; the update must invalidate it
    updated = await harness.posts.update(
        caller=alice, post_id=post_id, changes=PostChanges(title="new", tags=[], media=None)
    )
    assert (updated.post.title, updated.post.content) == ("new", "c")
    assert updated.post.tags == ()
    assert len(updated.post.media) == 1
    again = await harness.posts.get(post_id)
    assert again.post.title == "new"
    assert again.post.tags == ()


async def test_only_the_author_may_change_or_delete(harness: Harness) -> None:
    alice, bob = harness.users.add(1), harness.users.add(2)
    post_id = (await harness.posts.create(caller=alice, title="mine")).post.id
    with pytest.raises(ForbiddenError):
        await harness.posts.update(caller=bob, post_id=post_id, changes=PostChanges(title="x"))
    with pytest.raises(ForbiddenError):
        await harness.posts.delete(caller=bob, post_id=post_id)
    await harness.posts.delete(caller=alice, post_id=post_id)
    with pytest.raises(NotFoundError, match="post not found"):
        await harness.posts.get(post_id)
    with pytest.raises(NotFoundError, match="post not found"):
        await harness.posts.delete(caller=alice, post_id=post_id)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"title": ""},
        {"title": "x" * 256},
        {"title": "t", "content": "x" * 10_001},
        {"title": "t", "tags": ["x" * 51]},
        {"title": "t", "tags": ["   "]},
        {"title": "t", "media": [MediaInput(url="https://a.b/c", type="gif", position=1)]},
        {"title": "t", "media": [MediaInput(url="https://a.b/c", type="image", position=10)]},
        {"title": "t", "media": [MediaInput(url="https://a.b/c", type="image", position=0)]},
        {"title": "t", "media": [MediaInput(url="not a url", type="image", position=1)]},
        {
            "title": "t",
            "media": [MediaInput(url="https://a.b/" + "x" * 510, type="image", position=1)],
        },
        {
            "title": "t",
            "media": [MediaInput(url="https://a.b/c", type="image", position=1)] * 10,
        },
    ],
)
async def test_bad_input_is_validation_failed(harness: Harness, kwargs: dict[str, Any]) -> None:
    alice = harness.users.add(1)
    with pytest.raises(InvalidArgumentError, match=r"^validation failed$"):
        await harness.posts.create(caller=alice, **kwargs)


async def test_list_filters_sorts_and_counts(harness: Harness) -> None:
    alice, bob = harness.users.add(1), harness.users.add(2)
    ids = []
    for index in range(5):
        caller = alice if index % 2 == 0 else bob
        tags = ["Even"] if index % 2 == 0 else ["odd"]
        ids.append(
            (await harness.posts.create(caller=caller, title=f"p{index}", tags=tags)).post.id
        )
    page, total = await harness.posts.list_posts(where=PostFilter(), offset=0, limit=2)
    assert total == 5
    assert [item.post.id for item in page] == ids[::-1][:2]
    by_alice, total = await harness.posts.list_posts(where=PostFilter(author_id=1))
    assert total == 3
    assert {item.author.id for item in by_alice} == {1}
    tagged, total = await harness.posts.list_posts(where=PostFilter(tag="  EVEN "))
    assert {t.name for item in tagged for t in item.post.tags} == {"Even"}
    assert total == 3
    future = datetime.now(UTC) + timedelta(hours=1)
    _, total = await harness.posts.list_posts(where=PostFilter(created_after=future))
    assert total == 0
    _, total = await harness.posts.list_posts(where=PostFilter(created_before=future))
    assert total == 5
    with pytest.raises(InvalidArgumentError):
        await harness.posts.list_posts(where=PostFilter(), offset=-1)
    with pytest.raises(InvalidArgumentError):
        await harness.posts.list_posts(where=PostFilter(), limit=101)


async def test_each_list_filter_has_an_index(harness: Harness) -> None:
    assert harness.component.database is not None
    async with harness.component.database.read() as session:
        rows = await session.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        )
        indexes = {row.indexname: row.indexdef for row in rows}
    assert "(created_at DESC, id DESC)" in indexes["ix_posts_created"]
    assert "(author_id, created_at DESC, id DESC)" in indexes["ix_posts_author_created"]
    assert "(tag_id, post_id)" in indexes["ix_post_tags_tag"]
    assert '(post_id, "position", ordinal)' in indexes["ix_post_media_post"]


async def test_a_page_costs_constant_statements_and_one_batched_rpc(harness: Harness) -> None:
    measured: dict[int, tuple[int, int]] = {}
    for author_id in range(1, 51):
        caller = harness.users.add(author_id)
        await harness.posts.create(
            caller=caller,
            title=f"post {author_id}",
            tags=["t1", "t2"],
            media=[MediaInput(url="https://x.example/a.png", type="image", position=1)] * 2,
        )
    for size in (1, 50):
        # A cold author cache, so the page really asks the user service.
        for author_id in range(1, 51):
            await harness.posts.refresh_author(author_id)
        with harness.counting() as statements:
            page, total = await harness.posts.list_posts(where=PostFilter(), limit=size)
        assert (len(page), total) == (size, 50)
        assert {len(item.post.media) for item in page} == {2}
        measured[size] = (len(statements), len(harness.users.get_users_calls))
    print(f"page cost (statements, GetUsers calls): {measured}")  # noqa: T201 - the measurement belongs in the run's output
    assert measured[1] == measured[50]
    # Posts, their media and tags and the total come back in one statement.
    assert measured[50] == (1, 1)


async def test_a_page_past_the_end_still_counts_every_match(harness: Harness) -> None:
    alice, bob = harness.users.add(1), harness.users.add(2)
    for index in range(6):
        caller = alice if index < 4 else bob
        await harness.posts.create(caller=caller, title=f"p{index}", tags=["Tag"] if index else [])
    now = datetime.now(UTC)
    filters = {
        "none": (PostFilter(), 6),
        "author": (PostFilter(author_id=1), 4),
        "tag": (PostFilter(tag="tAg"), 5),
        "range": (
            PostFilter(created_after=now - timedelta(hours=1), created_before=now + timedelta(1)),
            6,
        ),
        "all": (
            PostFilter(author_id=1, tag="TAG", created_after=now - timedelta(hours=1)),
            3,
        ),
    }
    for name, (where, expected) in filters.items():
        with harness.counting() as statements:
            page, total = await harness.posts.list_posts(where=where, offset=1, limit=2)
        assert (len(page), total, len(statements)) == (2, expected, 1), name
        # The last row of the matches: the window count still has a row to ride on.
        page, total = await harness.posts.list_posts(where=where, offset=expected - 1, limit=5)
        assert (len(page), total) == (1, expected), name
        # Past the end the window has no row, so (only then) a separate count answers.
        with harness.counting() as statements:
            page, total = await harness.posts.list_posts(where=where, offset=expected, limit=5)
        assert (page, total, len(statements)) == ([], expected, 2), name
        page, total = await harness.posts.list_posts(where=where, offset=1000, limit=5)
        assert (page, total) == ([], expected), name
    # No match at all: an empty first page is the whole answer, no count needed.
    with harness.counting() as statements:
        page, total = await harness.posts.list_posts(where=PostFilter(author_id=99))
    assert (page, total, len(statements)) == ([], 0, 1)


async def test_deleted_author_disappears_and_never_fails_a_list(harness: Harness) -> None:
    alice, bob = harness.users.add(1), harness.users.add(2)
    gone = (await harness.posts.create(caller=bob, title="bob's")).post.id
    await harness.posts.create(caller=alice, title="alice's")
    # The user service forgot bob; the deletion event has not reached posts yet.
    del harness.users.profiles[2]
    await harness.posts.refresh_author(2)
    page, total = await harness.posts.list_posts(where=PostFilter())
    assert [item.author.id for item in page] == [1]
    assert total == 1
    with pytest.raises(NotFoundError, match="post not found"):
        await harness.posts.get(gone)
    # Then the UserDeleted hook removes bob's rows for good.
    assert await harness.posts.delete_posts_of_author(2) == 1
    assert await harness.posts.delete_posts_of_author(2) == 0


async def test_profile_change_shows_after_refresh_author(harness: Harness) -> None:
    alice = harness.users.add(1, full_name="Old")
    post_id = (await harness.posts.create(caller=alice, title="t")).post.id
    assert (await harness.posts.get(post_id)).author.full_name == "Old"
    harness.users.add(1, full_name="New")
    await harness.posts.refresh_author(1)
    assert (await harness.posts.get(post_id)).author.full_name == "New"


async def test_single_reads_are_served_from_cache(harness: Harness) -> None:
    alice = harness.users.add(1)
    post_id = (await harness.posts.create(caller=alice, title="t")).post.id
    await harness.posts.get(post_id)
    with harness.counting() as statements:
        await harness.posts.get(post_id)
    assert statements == []
    assert harness.users.get_users_calls == []


async def test_reads_work_with_redis_down(postgres_server: PostgresServer, tmp_path: Path) -> None:
    redis = RedisServer(data_dir=tmp_path / "redis")
    redis.start()
    built, user_server = await start_harness(new_database(postgres_server, "post"), redis.url)
    try:
        alice = built.users.add(1)
        post_id = (await built.posts.create(caller=alice, title="t")).post.id
        await built.posts.get(post_id)
        redis.stop()
        errors = CACHE_REQUESTS.labels("post", "error")._value.get()
        assert (await built.posts.get(post_id)).post.title == "t"
        page, total = await built.posts.list_posts(where=PostFilter())
        assert (len(page), total) == (1, 1)
        updated = await built.posts.update(
            caller=alice, post_id=post_id, changes=PostChanges(title="t2")
        )
        assert updated.post.title == "t2"
        assert CACHE_REQUESTS.labels("post", "error")._value.get() > errors
    finally:
        redis.stop()
        await built.component.stop()
        await user_server.stop(grace=0)


async def test_migration_matches_the_models(harness: Harness) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pinstack_post.models import metadata

    assert harness.component.database is not None
    async with harness.component.database.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    bookkeeping = ("alembic_version", migrations.LINEAGE_TABLE)
    assert [change for change in diff if not any(t in str(change) for t in bookkeeping)] == []
