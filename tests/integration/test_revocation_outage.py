"""Session revocation survives a Redis outage: PostgreSQL is the record, Redis only the cache.

A real gateway, a real auth service on real PostgreSQL, and a Redis server of this module's own
(stopped and started here, so no other test loses its Redis); the user service is a small fake
at the network boundary. A session that was ended must never be accepted again, whatever is
down: when Redis is, the gateway asks auth; when auth is down too, it answers 503, not 200.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_auth.app import MIGRATIONS_PACKAGE, AuthComponent, create_component
from pinstack_auth.settings import AuthSettings
from pinstack_common.db.migrations import upgrade
from pinstack_common.errors import AlreadyExistsError, NotFoundError
from pinstack_common.events import InProcessTransport
from pinstack_common.observability.metrics import CACHE_REQUESTS
from pinstack_devinfra.ports import free_port
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer
from pinstack_gateway.app import GatewayComponent
from pinstack_gateway.app import create_component as create_gateway
from pinstack_gateway.settings import GatewaySettings
from tests.integration.fake_users import start_user_server
from tests.polling import eventually

TOKEN = "revocation-outage-internal-token"
PASSWORD = "correct horse battery"
PROBE = "/api/v1/users/avatar"  # any JWT route; the fake user service answers it
UNAUTHENTICATED = {"status": 401, "message": "unauthenticated"}
UNAVAILABLE = {"status": 503, "message": "external service unavailable"}


@dataclass
class FakeUsers(user_pb2_grpc.UserServiceServicer):
    users: dict[int, user_pb2.User] = field(default_factory=dict)

    def _find(self, match: Callable[[user_pb2.User], bool]) -> user_pb2.User:
        for user in self.users.values():
            if match(user):
                return user
        raise NotFoundError("user not found")

    async def CreateUser(self, request: Any, context: Any) -> user_pb2.User:  # noqa: N802 - method names are fixed by the proto
        if any(u.username == request.username for u in self.users.values()):
            raise AlreadyExistsError("username already exists")
        user = user_pb2.User(id=len(self.users) + 1, username=request.username,
                             email=request.email)  # fmt: skip
        self.users[user.id] = user
        return user

    async def GetUserByUsername(self, request: Any, context: Any) -> user_pb2.User:  # noqa: N802 - method names are fixed by the proto
        return self._find(lambda u: u.username == request.username)

    async def GetUserByEmail(self, request: Any, context: Any) -> user_pb2.User:  # noqa: N802 - method names are fixed by the proto
        return self._find(lambda u: u.email == request.email)

    async def UpdateAvatar(self, request: Any, context: Any) -> user_pb2.User:  # noqa: N802 - method names are fixed by the proto
        return self._find(lambda u: u.id == request.id)


class Outage:
    """This module's Redis: stop it, bring it back with its data, or back empty."""

    def __init__(self, data_dir: Path) -> None:
        self._root = data_dir
        self.port = free_port()
        self.server = RedisServer(data_dir=data_dir / "redis", port=self.port)
        self.server.start()

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def restart(self, *, empty: bool = False) -> None:
        # Same port, so every client reconnects; a new data directory is a Redis restarted
        # without persistence (or flushed): every key is gone, the warm marker too.
        data_dir = self._root / (f"redis-{uuid.uuid4().hex[:6]}" if empty else "redis")
        self.server = RedisServer(data_dir=data_dir, port=self.port)
        self.server.start()


@dataclass
class Stack:
    redis: Outage
    auth: AuthComponent
    gateway: GatewayComponent
    client: httpx.AsyncClient
    users: FakeUsers

    async def account(self) -> tuple[str, dict[str, str]]:
        """Register; the username and the session's tokens."""
        name = f"u{uuid.uuid4().hex[:10]}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        reply = await self.client.post("/api/v1/auth/register", json=body)
        assert reply.status_code == 201, reply.text
        return name, reply.json()["data"]

    async def login(self, name: str, password: str = PASSWORD) -> dict[str, str]:
        reply = await self.client.post(
            "/api/v1/auth/login", json={"login": name, "password": password}
        )
        assert reply.status_code == 200, reply.text
        tokens: dict[str, str] = reply.json()["data"]
        return tokens

    async def probe(self, tokens: dict[str, str]) -> httpx.Response:
        return await self.client.put(
            PROBE,
            json={"avatar_url": "https://example.com/a.png"},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )

    async def status(self, tokens: dict[str, str]) -> int:
        return (await self.probe(tokens)).status_code


@pytest.fixture
def auth_database(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"revoc_{uuid.uuid4().hex[:10]}"
    postgres_server.ensure_database(name)
    url = postgres_server.url(name)
    upgrade(package=MIGRATIONS_PACKAGE, url=url)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    redis = Outage(tmp_path)
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
async def stack(auth_database: str, outage: Outage) -> AsyncIterator[Stack]:
    users = FakeUsers()  # type: ignore[abstract]  # only the RPCs auth and the probe use
    user_server = await start_user_server(users, internal_token=TOKEN)
    auth = create_component(
        AuthSettings(
            database_url=auth_database,
            redis_url=outage.url,
            user_addr=user_server.address,
            grpc_host="127.0.0.1",
            grpc_port=free_port(),
            internal_token=TOKEN,
            argon2_time_cost=1,
            argon2_memory_cost_kib=8,
            argon2_parallelism=1,
            revocation_sync_interval_seconds=0.2,
        ),
        transport=InProcessTransport(),
    )
    await auth.start()
    nobody = f"127.0.0.1:{free_port()}"
    gateway = create_gateway(
        GatewaySettings(
            http_port=free_port(),
            redis_url=outage.url,
            internal_token=TOKEN,
            auth_addr=auth.address,
            user_addr=user_server.address,
            post_addr=nobody,
            relation_addr=nobody,
            notification_addr=nobody,
        )
    )
    await gateway.start()
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            yield Stack(redis=outage, auth=auth, gateway=gateway, client=client, users=users)
    finally:
        await gateway.stop()
        await auth.stop()
        await user_server.stop(grace=0)


async def cached(stack: Stack, key: str) -> bool:
    """Whether ``key`` (e.g. ``session:<sid>``) reached this module's Redis."""
    redis = Redis.from_url(stack.redis.url)
    try:
        return bool(await redis.exists(f"pinstack:revoked:{key}"))
    finally:
        await redis.aclose()


async def warm(stack: Stack) -> bool:
    return await cached(stack, "warm")


def _authority_calls() -> float:
    return float(CACHE_REQUESTS.labels("gateway", "authority")._value.get())


# -- the tests ---------------------------------------------------------------------------------


async def test_a_token_logged_out_before_the_outage_stays_refused(stack: Stack) -> None:
    _, ended = await stack.account()
    _, live = await stack.account()
    logout = await stack.client.post(
        "/api/v1/auth/logout", json={"refresh_token": ended["refresh_token"]}
    )
    assert logout.status_code == 200
    assert await stack.status(ended) == 401

    stack.redis.stop()
    before = _authority_calls()
    refused = await stack.probe(ended)
    assert (refused.status_code, refused.json()) == (401, UNAUTHENTICATED)
    # A valid token still works: answered by auth from its database.
    assert await stack.status(live) == 200
    assert _authority_calls() >= before + 2


async def test_a_logout_during_the_outage_is_refused_during_and_after_it(stack: Stack) -> None:
    _, tokens = await stack.account()
    _, other = await stack.account()
    await eventually(partial(warm, stack), what="auth warmed Redis")
    stack.redis.stop()

    logout = await stack.client.post(
        "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert logout.status_code == 200  # the logout is durable, not forgotten
    assert await stack.status(tokens) == 401
    assert await stack.status(other) == 200

    # Redis comes back with its data (the marker too) but without this logout: the gateway,
    # which saw the outage, keeps asking auth until the replay is in; then Redis has it.
    stack.redis.restart()
    assert await stack.status(tokens) == 401
    await eventually(partial(cached, stack, f"session:{_sid(tokens)}"), what="the logout replayed")
    assert await stack.status(tokens) == 401
    assert await stack.status(other) == 200


async def test_a_logout_during_the_outage_holds_when_redis_returns_empty(stack: Stack) -> None:
    _, tokens = await stack.account()
    stack.redis.stop()
    logout = await stack.client.post(
        "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert logout.status_code == 200

    stack.redis.restart(empty=True)  # no persistence: nothing, not even the warm marker
    assert await stack.status(tokens) == 401
    await eventually(partial(warm, stack), what="auth re-warmed Redis from PostgreSQL")
    assert await cached(stack, f"session:{_sid(tokens)}")
    assert await stack.status(tokens) == 401


async def test_a_restart_of_the_gateway_after_the_outage_still_refuses(stack: Stack) -> None:
    """A gateway that never saw the outage trusts Redis only once the replay is in."""
    _, tokens = await stack.account()
    await eventually(partial(warm, stack), what="auth warmed Redis")
    stack.redis.stop()
    await stack.client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    stack.redis.restart()
    await eventually(partial(cached, stack, f"session:{_sid(tokens)}"), what="the logout replayed")
    await stack.gateway.stop()
    await stack.gateway.start()
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=10) as client:
        stack.client = client
        assert await stack.status(tokens) == 401


async def test_a_password_change_during_the_outage_ends_every_session(stack: Stack) -> None:
    name, first = await stack.account()
    second = await stack.login(name)
    stack.redis.stop()

    changed = await stack.client.post(
        "/api/v1/auth/update-password",
        json={"old_password": PASSWORD, "new_password": "a brand new secret"},
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert changed.status_code == 200, changed.text
    assert await stack.status(first) == 401
    assert await stack.status(second) == 401
    fresh = await stack.login(name, "a brand new secret")
    assert await stack.status(fresh) == 200

    stack.redis.restart()
    assert await stack.status(first) == 401
    assert await stack.status(second) == 401
    user_key = f"user:{_uid(stack, name)}"
    await eventually(partial(cached, stack, user_key), what="the change replayed")
    assert await stack.status(second) == 401
    assert await stack.status(fresh) == 200


async def test_redis_and_auth_both_down_answers_503_not_200(stack: Stack) -> None:
    _, tokens = await stack.account()
    assert await stack.status(tokens) == 200
    stack.redis.stop()
    await stack.auth.stop()
    answer = await stack.probe(tokens)
    assert (answer.status_code, answer.json()) == (503, UNAVAILABLE)


async def test_readyz_and_the_log_report_the_outage_once(stack: Stack) -> None:
    ready = await stack.client.get("/readyz")
    assert ready.status_code == 200
    assert (ready.json()["status"], ready.json()["services"]["redis"]) == ("ready", "serving")
    _, tokens = await stack.account()
    errors = CACHE_REQUESTS.labels("gateway", "error")._value.get()

    stack.redis.stop()
    with capture_logs() as logs:
        for _ in range(5):
            assert await stack.status(tokens) == 200
        down = await stack.client.get("/readyz")
        stack.redis.restart()
        assert await stack.status(tokens) == 200
        up = await stack.client.get("/readyz")
    assert down.status_code == 200  # degraded, still serving (through auth)
    assert down.json()["status"] == "degraded"
    assert down.json()["services"]["redis"] == "unavailable"
    assert up.json()["services"]["redis"] == "serving"
    assert CACHE_REQUESTS.labels("gateway", "error")._value.get() >= errors + 5
    lost = [e for e in logs if e["event"].startswith("revocation cache (Redis) unavailable")]
    back = [e for e in logs if e["event"].startswith("revocation cache (Redis) reachable")]
    assert [e["log_level"] for e in lost] == ["warning"]
    assert len(back) == 1


def _sid(tokens: dict[str, str]) -> str:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return str(claims["sid"])


def _uid(stack: Stack, name: str) -> int:
    return int(stack.users._find(lambda u: u.username == name).id)
