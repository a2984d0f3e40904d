"""One upstream failure, one HTTP answer, whichever service met it.

A real gateway in front of the real auth and post services, both calling a stand-in user
service that can be made to fail. Registering reaches the user service through auth
(``CreateUser``), creating a post through post (``GetUsers``); each failure of the user service
must give the same status and message on both paths (``pinstack_common.grpc.client``).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_auth.app import AuthComponent
from pinstack_auth.settings import AuthSettings
from pinstack_common.db import migrations
from pinstack_common.errors import NotFoundError, UnavailableError
from pinstack_common.events import InProcessTransport
from pinstack_devinfra.ports import free_port
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer
from pinstack_gateway.app import GatewayComponent
from pinstack_gateway.settings import GatewaySettings
from pinstack_post.app import PostComponent
from pinstack_post.settings import PostSettings
from tests.conftest import new_database
from tests.integration.fake_users import start_user_server

TOKEN = "upstream-failures-internal-token"
# The services give up on the user service long before the gateway gives up on them, so the
# gateway's own deadline never decides the answer.
SERVICE_DEADLINE_SECONDS = 0.5
GATEWAY_DEADLINE_SECONDS = 30.0


@dataclass
class FlakyUsers(user_pb2_grpc.UserServiceServicer):
    """Answers until told how to fail: ``hang`` (past any deadline), ``unavailable`` or
    ``bug`` (an unexpected exception: INTERNAL)."""

    failure: str | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    profiles: dict[int, user_pb2.User] = field(default_factory=dict)
    # Ids no other test's cached authors share (the Redis server is the session's).
    ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(random.randrange(10**9, 2 * 10**9))
    )

    async def _fail(self) -> None:
        if self.failure == "hang":
            await self.released.wait()  # set at teardown: until then, past every deadline
        if self.failure == "unavailable":
            raise UnavailableError("database unavailable")
        if self.failure == "bug":
            raise RuntimeError("a bug in the user service")

    async def CreateUser(  # noqa: N802 - fixed by the proto
        self, request: user_pb2.CreateUserRequest, context: object
    ) -> user_pb2.User:
        await self._fail()
        user = user_pb2.User(id=next(self.ids), username=request.username, email=request.email)
        self.profiles[user.id] = user
        return user

    async def GetUserByUsername(  # noqa: N802 - fixed by the proto
        self, request: user_pb2.GetUserByUsernameRequest, context: object
    ) -> user_pb2.User:
        """Registration's check that the name is free: it always is (names are unique here)."""
        await self._fail()
        raise NotFoundError("user not found")

    async def GetUserByEmail(  # noqa: N802 - fixed by the proto
        self, request: user_pb2.GetUserByEmailRequest, context: object
    ) -> user_pb2.User:
        await self._fail()
        raise NotFoundError("user not found")

    async def GetUsers(  # noqa: N802 - fixed by the proto
        self, request: user_pb2.GetUsersRequest, context: object
    ) -> user_pb2.GetUsersResponse:
        await self._fail()
        return user_pb2.GetUsersResponse(
            users=[self.profiles[i] for i in request.ids if i in self.profiles]
        )


@dataclass
class Stack:
    users: FlakyUsers
    gateway: GatewayComponent

    async def register(self, client: httpx.AsyncClient) -> httpx.Response:
        name = f"u{uuid.uuid4().hex[:10]}"
        body = {"username": name, "email": f"{name}@example.com", "password": "correct horse 1"}
        return await client.post("/api/v1/auth/register", json=body)

    async def create_post(self, client: httpx.AsyncClient, token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await client.post("/api/v1/posts", json={"title": "hello"}, headers=headers)


@pytest.fixture(scope="module")
async def stack(postgres_server: PostgresServer, redis_server: RedisServer) -> AsyncIterator[Stack]:
    auth_url = new_database(postgres_server, "auth")
    post_url = new_database(postgres_server, "post")
    for package, url in (("pinstack_auth", auth_url), ("pinstack_post", post_url)):
        await asyncio.to_thread(migrations.upgrade, package=package, url=url)
    users = FlakyUsers()  # type: ignore[abstract]  # only the calls these paths make
    user_server = await start_user_server(users, internal_token=TOKEN)
    common: dict[str, Any] = {
        "redis_url": redis_server.url,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "internal_token": TOKEN,
        "user_addr": user_server.address,
        "rpc_timeout_seconds": SERVICE_DEADLINE_SECONDS,
    }
    auth = AuthComponent(
        settings=AuthSettings(
            **common,
            database_url=auth_url,
            argon2_time_cost=1,
            argon2_memory_cost_kib=8,
            argon2_parallelism=1,
        ),
        transport=InProcessTransport(),
    )
    await auth.start()
    post = PostComponent(
        settings=PostSettings(**common, database_url=post_url, auth_addr=auth.address),
        transport=InProcessTransport(),
    )
    await post.start()
    gateway = GatewayComponent(
        settings=GatewaySettings(
            **{**common, "rpc_timeout_seconds": GATEWAY_DEADLINE_SECONDS},
            http_port=0,
            auth_addr=auth.address,
            post_addr=post.address,
            relation_addr=f"127.0.0.1:{free_port()}",
            notification_addr=f"127.0.0.1:{free_port()}",
        )
    )
    await gateway.start()
    try:
        yield Stack(users=users, gateway=gateway)
    finally:
        users.released.set()
        await gateway.stop()
        await post.stop()
        await auth.stop()
        await user_server.stop(grace=0)


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        ("hang", 504, "external service timeout"),
        ("unavailable", 503, "external service unavailable"),
        ("bug", 500, "internal server error"),
    ],
)
async def test_the_same_user_service_failure_answers_the_same_through_auth_and_post(
    stack: Stack, failure: str, status: int, message: str
) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=60) as client:
        stack.users.failure = None
        registered = await stack.register(client)
        assert registered.status_code == 201, registered.text
        token = str(registered.json()["data"]["access_token"])

        stack.users.failure = failure
        through_auth = await stack.register(client)
        through_post = await stack.create_post(client, token)
        stack.users.failure = None

    expected = {"status": status, "message": message}
    assert (through_auth.status_code, through_auth.json()) == (status, expected)
    assert (through_post.status_code, through_post.json()) == (status, expected)
