"""The auth service over gRPC, against real PostgreSQL and Redis.

The user service is a small in-test fake at the network boundary (the contract tier runs the real
one): it keeps profiles in memory, answers with the same domain errors, and only lets a profile's
owner delete it, as the real service does.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import argon2
import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_auth.app import MIGRATIONS_PACKAGE, AuthComponent, create_component
from pinstack_auth.events import handlers
from pinstack_auth.keys import SigningKey
from pinstack_auth.repository import AuthRepository
from pinstack_auth.settings import AuthSettings
from pinstack_common.context import caller_authorization
from pinstack_common.db.database import Database
from pinstack_common.db.migrations import upgrade
from pinstack_common.errors import AlreadyExistsError, ForbiddenError, NotFoundError
from pinstack_common.events import InProcessTransport
from pinstack_common.grpc.client import open_channel
from pinstack_common.security.tokens import AccessTokenVerifier
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer
from tests.integration.fake_users import start_user_server
from tests.polling import eventually

TOKEN = "integration-internal-token"
PASSWORD = "correct-horse-1"


# -- the fake user service ---------------------------------------------------------------------


@dataclass
class FakeUsers(user_pb2_grpc.UserServiceServicer):
    users: dict[int, user_pb2.User] = field(default_factory=dict)
    next_id: int = 1
    verifier: AccessTokenVerifier | None = None
    deletions: list[int] = field(default_factory=list)

    def _find(self, predicate: Any) -> user_pb2.User:
        for user in self.users.values():
            if predicate(user):
                return user
        raise NotFoundError("user not found")

    async def CreateUser(  # noqa: N802 - gRPC method names
        self, request: user_pb2.CreateUserRequest, context: Any
    ) -> user_pb2.User:
        for user in self.users.values():
            if user.username.lower() == request.username.lower():
                raise AlreadyExistsError("username already exists")
            if user.email.lower() == request.email.lower():
                raise AlreadyExistsError("email already exists")
        user = user_pb2.User(
            id=self.next_id, username=request.username, email=request.email,
            full_name=request.full_name, bio=request.bio, avatar_url=request.avatar_url,
        )  # fmt: skip
        self.users[user.id] = user
        self.next_id += 1
        return user

    async def GetUser(  # noqa: N802 - gRPC method names
        self, request: user_pb2.GetUserRequest, context: Any
    ) -> user_pb2.User:
        return self._find(lambda u: u.id == request.id)

    async def GetUserByUsername(  # noqa: N802 - gRPC method names
        self, request: user_pb2.GetUserByUsernameRequest, context: Any
    ) -> user_pb2.User:
        return self._find(lambda u: u.username.lower() == request.username.lower())

    async def GetUserByEmail(  # noqa: N802 - gRPC method names
        self, request: user_pb2.GetUserByEmailRequest, context: Any
    ) -> user_pb2.User:
        return self._find(lambda u: u.email.lower() == request.email.lower())

    async def DeleteUser(  # noqa: N802 - gRPC method names
        self, request: user_pb2.DeleteUserRequest, context: Any
    ) -> user_pb2.DeleteUserResponse:
        assert self.verifier is not None
        identity = await self.verifier.verify_header(caller_authorization.get())
        if identity.user_id != request.id:
            raise ForbiddenError("forbidden")
        self._find(lambda u: u.id == request.id)
        del self.users[request.id]
        self.deletions.append(request.id)
        return user_pb2.DeleteUserResponse()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_database(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"auth_{uuid.uuid4().hex[:10]}"
    postgres_server.ensure_database(name)
    url = postgres_server.url(name)
    upgrade(package=MIGRATIONS_PACKAGE, url=url)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(scope="module")
async def fake_users() -> AsyncIterator[tuple[FakeUsers, str]]:
    fake = FakeUsers()  # type: ignore[abstract]  # only the RPCs the auth service uses
    server = await start_user_server(fake, internal_token=TOKEN)
    yield fake, server.address
    await server.stop(grace=0)


def _settings(database_url: str, redis_url: str, user_addr: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "database_url": database_url, "redis_url": redis_url, "user_addr": user_addr,
        "grpc_host": "127.0.0.1", "grpc_port": 0, "internal_token": TOKEN,
        # Cheap hashes keep the suite fast; the algorithm (Argon2id) is the same.
        "argon2_time_cost": 1, "argon2_memory_cost_kib": 8, "argon2_parallelism": 1,
    }  # fmt: skip
    values.update(overrides)
    return AuthSettings(**values)


@dataclass
class Running:
    component: AuthComponent
    stub: Any
    channel: grpc.aio.Channel

    async def close(self) -> None:
        await self.channel.close()
        await self.component.stop()


async def _run(settings: AuthSettings) -> Running:
    # Events are out of scope here (the Kafka tier covers them): a private in-process bus.
    component = create_component(settings, transport=InProcessTransport())
    await component.start()
    channel = open_channel(
        address=component.address, service="auth", internal_token=TOKEN, timeout=60
    )
    return Running(
        component=component, stub=auth_pb2_grpc.AuthServiceStub(channel), channel=channel
    )


@pytest.fixture(scope="module")
async def auth(
    auth_database: str, redis_server: RedisServer, fake_users: tuple[FakeUsers, str]
) -> AsyncIterator[Running]:
    fake, address = fake_users
    running = await _run(_settings(auth_database, redis_server.url, address))

    async def jwks() -> str:
        reply = await running.stub.GetJwks(auth_pb2.GetJwksRequest())
        return str(reply.jwks_json)

    fake.verifier = AccessTokenVerifier(jwks_source=jwks, refetch_interval=0)
    yield running
    await running.close()


def _unique() -> str:
    return uuid.uuid4().hex[:12]


async def _register(auth: Running, name: str | None = None) -> tuple[str, Any]:
    name = name or f"u{_unique()}"
    pair = await auth.stub.Register(
        auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)
    )
    return name, pair


async def _fails(call: Any, code: grpc.StatusCode, message: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert (caught.value.code(), caught.value.details()) == (code, message)
    return caught.value


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


UNAUTH = grpc.StatusCode.UNAUTHENTICATED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


# -- register, create, login --------------------------------------------------------------------


async def test_register_issues_a_verifiable_pair(
    auth: Running, fake_users: tuple[FakeUsers, str]
) -> None:
    name, pair = await _register(auth)
    assert pair.user_id == fake_users[0]._find(lambda u: u.username == name).id
    assert fake_users[0].verifier is not None
    identity = await fake_users[0].verifier.verify(pair.access_token)
    assert identity.user_id == pair.user_id


async def test_register_conflicts_keep_the_contract_messages(auth: Running) -> None:
    name, _ = await _register(auth)
    other = f"u{_unique()}"
    await _fails(
        auth.stub.Register(auth_pb2.RegisterRequest(
            username=name.upper(), email=f"{other}@example.com", password=PASSWORD)),
        grpc.StatusCode.ALREADY_EXISTS, "username already exists",
    )  # fmt: skip
    await _fails(
        auth.stub.Register(auth_pb2.RegisterRequest(
            username=other, email=f"{name}@EXAMPLE.com", password=PASSWORD)),
        grpc.StatusCode.ALREADY_EXISTS, "email already exists",
    )  # fmt: skip


@pytest.mark.parametrize(
    "request_fields",
    [
        {"username": "ab", "email": "ab@example.com", "password": PASSWORD},
        {"username": "has space", "email": "hs@example.com", "password": PASSWORD},
        {"username": "at@sign", "email": "as@example.com", "password": PASSWORD},
        {"username": "okname", "email": "not-an-email", "password": PASSWORD},
        {"username": "okname", "email": "ok@example.com", "password": "short"},
        {"username": "okname", "email": "ok@example.com", "password": "x" * 129},
        {"username": "okname", "email": "ok@example.com", "password": PASSWORD,
         "avatar_url": "ftp://x.io/a.png"},
    ],
)  # fmt: skip
async def test_register_validation(
    auth: Running, fake_users: tuple[FakeUsers, str], request_fields: dict[str, str]
) -> None:
    before = dict(fake_users[0].users)
    await _fails(
        auth.stub.Register(auth_pb2.RegisterRequest(**request_fields)), INVALID, "validation failed"
    )
    assert fake_users[0].users == before  # rejected before any profile was made


async def test_create_account_returns_the_user_and_can_log_in(auth: Running) -> None:
    name = f"u{_unique()}"
    user = await auth.stub.CreateAccount(
        auth_pb2.RegisterRequest(
            username=name, email=f"{name}@example.com", password=PASSWORD, bio="hi"
        )
    )
    assert (user.username, user.bio) == (name, "hi")
    pair = await auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD))
    assert pair.user_id == user.id


async def test_login_by_username_or_email_regardless_of_case(auth: Running) -> None:
    name, registered = await _register(auth)
    for login in (name, name.upper(), f"{name}@example.com", f"{name.upper()}@Example.COM"):
        pair = await auth.stub.Login(auth_pb2.LoginRequest(login=login, password=PASSWORD))
        assert pair.user_id == registered.user_id
        assert pair.refresh_token != registered.refresh_token


async def test_login_errors(auth: Running) -> None:
    name, _ = await _register(auth)
    login = auth.stub.Login
    await _fails(login(auth_pb2.LoginRequest(login=name, password="wrong-password")),
                 UNAUTH, "invalid credentials")  # fmt: skip
    await _fails(login(auth_pb2.LoginRequest(login=f"nobody{_unique()}", password=PASSWORD)),
                 grpc.StatusCode.NOT_FOUND, "user not found")  # fmt: skip
    await _fails(login(auth_pb2.LoginRequest(login="", password=PASSWORD)),
                 INVALID, "validation failed")  # fmt: skip
    await _fails(login(auth_pb2.LoginRequest(login=name, password="")),
                 INVALID, "validation failed")  # fmt: skip
    await _fails(login(auth_pb2.LoginRequest(login=name, password="1234567")),
                 INVALID, "validation failed")  # fmt: skip
    await _fails(login(auth_pb2.LoginRequest(login=name, password="x" * 129)),
                 INVALID, "validation failed")  # fmt: skip


async def test_failed_credentials_write_rolls_the_profile_back(
    auth: Running, auth_database: str, fake_users: tuple[FakeUsers, str]
) -> None:
    fake = fake_users[0]
    doomed_id = fake.next_id
    # Credentials already present for the id the next profile gets: the insert must fail.
    engine = create_async_engine(auth_database)
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO credentials (user_id, password_hash) VALUES (:id, 'x')"),
            {"id": doomed_id},
        )
    await engine.dispose()
    name = f"u{_unique()}"
    await _fails(
        auth.stub.Register(
            auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)
        ),
        grpc.StatusCode.INTERNAL,
        "internal error",
    )
    assert doomed_id in fake.deletions
    assert doomed_id not in fake.users


# -- refresh, logout ----------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(auth: Running) -> None:
    _, first = await _register(auth)
    second = await auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))
    assert second.user_id == first.user_id
    assert second.refresh_token != first.refresh_token
    # Replaying the rotated token: refused, and the whole session ends with it...
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip
    # ...so the legitimately rotated token fails too.
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=second.refresh_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip


async def test_reuse_leaves_other_sessions_alone(auth: Running) -> None:
    name, first = await _register(auth)
    other = await auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD))
    await auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip
    await auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=other.refresh_token))


async def test_concurrent_refreshes_of_one_token_count_as_reuse(auth: Running) -> None:
    _, pair = await _register(auth)
    request = auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)
    results = await asyncio.gather(
        auth.stub.Refresh(request), auth.stub.Refresh(request), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=winners[0].refresh_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.sig"])
async def test_refresh_rejects_malformed_tokens(auth: Running, token: str) -> None:
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip


async def test_refresh_and_logout_require_a_token(auth: Running) -> None:
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest()), INVALID, "validation failed")
    await _fails(auth.stub.Logout(auth_pb2.LogoutRequest()), INVALID, "validation failed")


async def test_an_access_token_is_not_a_refresh_token(auth: Running) -> None:
    _, pair = await _register(auth)
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.access_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip


async def test_logout_ends_the_session(auth: Running) -> None:
    _, pair = await _register(auth)
    await auth.stub.Logout(auth_pb2.LogoutRequest(refresh_token=pair.refresh_token))
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip
    await _fails(auth.stub.Logout(auth_pb2.LogoutRequest(refresh_token=pair.refresh_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip


async def test_refresh_tokens_are_stored_only_as_hashes(auth: Running, auth_database: str) -> None:
    _, pair = await _register(auth)
    engine = create_async_engine(auth_database)
    async with engine.connect() as connection:
        hashes = set(
            (await connection.execute(text("SELECT token_hash FROM refresh_tokens"))).scalars()
        )
        stored_hashes = list(
            (await connection.execute(text("SELECT password_hash FROM credentials"))).scalars()
        )
    await engine.dispose()
    assert hashlib.sha256(pair.refresh_token.encode()).hexdigest() in hashes
    assert pair.refresh_token not in hashes
    assert all(h.startswith("$argon2id$") or h == "x" for h in stored_hashes)


# -- passwords ----------------------------------------------------------------------------------


async def test_update_password_ends_every_session(auth: Running) -> None:
    name, first = await _register(auth)
    second = await auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD))
    new_password = "new-password-2"
    await auth.stub.UpdatePassword(
        auth_pb2.UpdatePasswordRequest(old_password=PASSWORD, new_password=new_password),
        metadata=_bearer(first.access_token),
    )
    for pair in (first, second):
        await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
                     UNAUTH, "invalid refresh token")  # fmt: skip
    await _fails(auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD)),
                 UNAUTH, "invalid credentials")  # fmt: skip
    await auth.stub.Login(auth_pb2.LoginRequest(login=name, password=new_password))


async def test_update_password_errors(auth: Running) -> None:
    _, pair = await _register(auth)
    update = auth.stub.UpdatePassword
    ok = auth_pb2.UpdatePasswordRequest(old_password=PASSWORD, new_password="another-pass")
    await _fails(update(ok), UNAUTH, "unauthenticated")
    await _fails(update(ok, metadata=_bearer(pair.refresh_token)), UNAUTH, "unauthenticated")
    await _fails(update(ok, metadata=(("authorization", "Basic abc"),)), UNAUTH, "invalid token")
    bearer = _bearer(pair.access_token)
    cases = [
        ("wrong-one", "another-pass", UNAUTH, "invalid credentials"),
        ("", "another-pass", INVALID, "validation failed"),
        (PASSWORD, "short", INVALID, "validation failed"),
        (PASSWORD, "x" * 129, INVALID, "validation failed"),
    ]
    for old, new, code, message in cases:
        request = auth_pb2.UpdatePasswordRequest(old_password=old, new_password=new)
        await _fails(update(request, metadata=bearer), code, message)


# -- user deletion ------------------------------------------------------------------------------


async def test_forget_user_removes_credentials_and_sessions(auth: Running) -> None:
    name, pair = await _register(auth)
    assert auth.component.use_cases is not None
    await auth.component.use_cases.forget_user(pair.user_id)
    await auth.component.use_cases.forget_user(pair.user_id)  # redelivered event: no error
    await _fails(auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
                 UNAUTH, "invalid refresh token")  # fmt: skip
    await _fails(auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD)),
                 UNAUTH, "invalid credentials")  # fmt: skip


async def test_user_deleted_event_runs_in_the_consumer_transaction(
    auth: Running, auth_database: str
) -> None:
    name, pair = await _register(auth)
    assert auth.component.use_cases is not None
    handle = handlers(forget_user=auth.component.use_cases.forget_user)[UserDeleted]
    database = Database(url=auth_database, component="test")
    try:
        with pytest.raises(RuntimeError, match="rolled back"):  # noqa: PT012 - the raise must happen inside the transaction
            async with database.transaction() as session:
                await handle(UserDeleted(user_id=pair.user_id), session)
                raise RuntimeError("rolled back")
        # The consumer's transaction failed: nothing was deleted.
        await auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD))
        async with database.transaction() as session:
            await handle(UserDeleted(user_id=pair.user_id), session)
    finally:
        await database.close()
    await _fails(auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD)),
                 UNAUTH, "invalid credentials")  # fmt: skip


async def _family_count(database_url: str, user_id: int) -> int:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM refresh_families WHERE user_id = :id"), {"id": user_id}
        )
    await engine.dispose()
    return int(count or 0)


async def test_purge_drops_ended_sessions_only(auth: Running, auth_database: str) -> None:
    name, ended = await _register(auth)
    live = await auth.stub.Login(auth_pb2.LoginRequest(login=name, password=PASSWORD))
    await auth.stub.Logout(auth_pb2.LogoutRequest(refresh_token=ended.refresh_token))
    assert await _family_count(auth_database, ended.user_id) == 2
    assert auth.component.use_cases is not None
    assert await auth.component.use_cases.purge_sessions() >= 1
    assert await _family_count(auth_database, ended.user_id) == 1
    live = await auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=live.refresh_token))
    # Once every token of a session has expired, the session goes too.
    database = Database(url=auth_database, component="test")
    try:
        async with database.transaction() as session:
            later = datetime.now(UTC) + timedelta(days=31)
            await AuthRepository().purge_families(session, now=later)
    finally:
        await database.close()
    assert await _family_count(auth_database, ended.user_id) == 0


# -- keys ---------------------------------------------------------------------------------------


async def test_keys_survive_a_restart(
    auth: Running, auth_database: str, redis_server: RedisServer, fake_users: tuple[FakeUsers, str]
) -> None:
    _, pair = await _register(auth)
    before = (await auth.stub.GetJwks(auth_pb2.GetJwksRequest())).jwks_json
    again = await _run(_settings(auth_database, redis_server.url, fake_users[1]))
    try:
        assert (await again.stub.GetJwks(auth_pb2.GetJwksRequest())).jwks_json == before
        await again.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    finally:
        await again.close()


async def test_key_file_wins_over_the_database(
    tmp_path: Path, auth_database: str, redis_server: RedisServer, fake_users: tuple[FakeUsers, str]
) -> None:
    key = SigningKey.generate()
    path = tmp_path / "signing.pem"
    path.write_text(key.to_pem())
    running = await _run(
        _settings(auth_database, redis_server.url, fake_users[1], auth_signing_key_file=path)
    )
    try:
        jwks = (await running.stub.GetJwks(auth_pb2.GetJwksRequest())).jwks_json
        assert f'"kid":"{key.kid}"' in jwks
    finally:
        await running.close()


# -- rate limits --------------------------------------------------------------------------------


async def test_login_failures_are_limited_per_account(
    auth: Running, auth_database: str, redis_server: RedisServer, fake_users: tuple[FakeUsers, str]
) -> None:
    name, _ = await _register(auth)
    limited = await _run(_settings(auth_database, redis_server.url, fake_users[1],
                                   login_failures_per_account="3/minute"))  # fmt: skip
    try:
        wrong = auth_pb2.LoginRequest(login=name, password="wrong-password", client_address="a1")
        for _ in range(3):
            await _fails(limited.stub.Login(wrong), UNAUTH, "invalid credentials")
        right = auth_pb2.LoginRequest(login=name, password=PASSWORD, client_address="a2")
        error = await _fails(limited.stub.Login(right), grpc.StatusCode.RESOURCE_EXHAUSTED,
                             "too many requests")  # fmt: skip
        retry_after = int(dict(error.trailing_metadata() or ())["retry-after"])
        assert 1 <= retry_after <= 60
        # Someone else, from the same address, is not affected.
        other, _ = await _register(auth)
        await limited.stub.Login(
            auth_pb2.LoginRequest(login=other, password=PASSWORD, client_address="a1")
        )
    finally:
        await limited.close()


async def test_login_failures_are_limited_per_address(
    auth_database: str, redis_server: RedisServer, fake_users: tuple[FakeUsers, str]
) -> None:
    address = f"10.0.0.{_unique()}"
    limited = await _run(_settings(auth_database, redis_server.url, fake_users[1],
                                   login_failures_per_address="4/minute"))  # fmt: skip
    try:
        for _ in range(4):
            await _fails(
                limited.stub.Login(auth_pb2.LoginRequest(
                    login=f"ghost{_unique()}", password=PASSWORD, client_address=address)),
                grpc.StatusCode.NOT_FOUND, "user not found",
            )  # fmt: skip
        await _fails(
            limited.stub.Login(auth_pb2.LoginRequest(
                login=f"ghost{_unique()}", password=PASSWORD, client_address=address)),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests",
        )  # fmt: skip
    finally:
        await limited.close()


async def test_limits_can_be_switched_off(
    auth: Running, auth_database: str, redis_server: RedisServer, fake_users: tuple[FakeUsers, str]
) -> None:
    name, _ = await _register(auth)
    unlimited = await _run(_settings(auth_database, redis_server.url, fake_users[1],
                                     rate_limits_enabled=False,
                                     login_failures_per_account="1/minute"))  # fmt: skip
    try:
        wrong = auth_pb2.LoginRequest(login=name, password="wrong-password")
        for _ in range(3):
            await _fails(unlimited.stub.Login(wrong), UNAUTH, "invalid credentials")
    finally:
        await unlimited.close()


async def test_many_logins_from_one_address_pass(auth: Running) -> None:
    """Test suites register and log in hundreds of users a minute from one address."""
    names = [(await _register(auth))[0] for _ in range(20)]
    for name in names:
        await auth.stub.Login(
            auth_pb2.LoginRequest(login=name, password=PASSWORD, client_address="127.0.0.1")
        )
        await _fails(
            auth.stub.Login(auth_pb2.LoginRequest(
                login=name, password="wrong-password", client_address="127.0.0.1")),
            UNAUTH, "invalid credentials",
        )  # fmt: skip


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Argon2 verification the auth service runs (counted, not timed)."""
    calls: list[str] = []
    real = argon2.PasswordHasher.verify

    def counting(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        calls.append(str(password))
        return real(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)
    return calls


async def test_parallel_wrong_passwords_never_pass_the_limit(
    auth: Running,
    auth_database: str,
    redis_server: RedisServer,
    fake_users: tuple[FakeUsers, str],
    verifications: list[str],
) -> None:
    """The attempt is counted before the password is checked, atomically: 30 parallel guesses
    against a limit of 3 get exactly 3 password checks."""
    name, _ = await _register(auth)
    limited = await _run(_settings(auth_database, redis_server.url, fake_users[1],
                                   login_failures_per_account_address="3/minute"))  # fmt: skip
    try:
        wrong = auth_pb2.LoginRequest(login=name, password="wrong-guess-1", client_address="p1")
        outcomes = await asyncio.gather(
            *(limited.stub.Login(wrong) for _ in range(30)), return_exceptions=True
        )
        codes = sorted(str(o.code()) for o in outcomes if isinstance(o, grpc.aio.AioRpcError))
        assert len(codes) == 30
        assert codes.count(str(UNAUTH)) == 3
        assert codes.count(str(grpc.StatusCode.RESOURCE_EXHAUSTED)) == 27
        assert verifications.count("wrong-guess-1") == 3
    finally:
        await limited.close()


async def test_an_attacker_from_one_address_cannot_lock_the_owner_out(
    auth: Running, auth_database: str, redis_server: RedisServer, fake_users: tuple[FakeUsers, str]
) -> None:
    name, _ = await _register(auth)
    limited = await _run(_settings(auth_database, redis_server.url, fake_users[1],
                                   login_failures_per_account_address="3/minute",
                                   login_failures_per_account="5/minute"))  # fmt: skip
    try:
        attack = auth_pb2.LoginRequest(login=name, password="wrong-guess-2", client_address="evil")
        for _ in range(3):
            await _fails(limited.stub.Login(attack), UNAUTH, "invalid credentials")
        for _ in range(5):  # refused at the pair: none of this uses up the account's ceiling
            await _fails(limited.stub.Login(attack), grpc.StatusCode.RESOURCE_EXHAUSTED,
                         "too many requests")  # fmt: skip
        owner = auth_pb2.LoginRequest(login=name, password=PASSWORD, client_address="home")
        await limited.stub.Login(owner)
        # The ceiling over all addresses still holds: 5 failures from 5 addresses, then 429.
        for n in range(5):
            await _fails(limited.stub.Login(auth_pb2.LoginRequest(
                login=name, password="wrong-guess-2", client_address=f"bot{n}")),
                UNAUTH, "invalid credentials")  # fmt: skip
        await _fails(limited.stub.Login(owner), grpc.StatusCode.RESOURCE_EXHAUSTED,
                     "too many requests")  # fmt: skip
    finally:
        await limited.close()


async def test_unknown_logins_cost_a_password_check_like_wrong_passwords(
    auth: Running, verifications: list[str]
) -> None:
    """No timing side channel: an unknown login runs one Argon2 verification (against a dummy
    hash), as a wrong password does. Counted, not timed."""
    name, _ = await _register(auth)
    await _fails(auth.stub.Login(auth_pb2.LoginRequest(login=name, password="wrong-guess-3")),
                 UNAUTH, "invalid credentials")  # fmt: skip
    await _fails(auth.stub.Login(auth_pb2.LoginRequest(
        login=f"nobody{_unique()}", password="wrong-guess-4")),
        grpc.StatusCode.NOT_FOUND, "user not found")  # fmt: skip
    await _fails(auth.stub.Login(auth_pb2.LoginRequest(
        login=f"nobody{_unique()}@example.com", password="wrong-guess-5")),
        grpc.StatusCode.NOT_FOUND, "user not found")  # fmt: skip
    assert [verifications.count(f"wrong-guess-{n}") for n in (3, 4, 5)] == [1, 1, 1]


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Argon2 hash the auth service computes (counted, not timed)."""
    calls: list[str] = []
    real = argon2.PasswordHasher.hash

    def counting(self: argon2.PasswordHasher, password: str | bytes, **kwargs: Any) -> str:
        calls.append(str(password))
        return real(self, password, **kwargs)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", counting)
    return calls


async def test_duplicate_registrations_answer_409_without_hashing(
    auth: Running, hashes: list[str]
) -> None:
    """A burst of one registration gets one 201 and 409s, and hashes one password: the others
    wait for the first and find the name taken, instead of queueing for Argon2."""
    name = f"u{_unique()}"
    password = f"burst-{_unique()}"
    request = auth_pb2.RegisterRequest(
        username=name, email=f"{name}@example.com", password=password
    )
    outcomes = await asyncio.gather(
        *(auth.stub.Register(request) for _ in range(20)), return_exceptions=True
    )
    failures = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(failures) == 19
    assert {(f.code(), f.details()) for f in failures} == {
        (grpc.StatusCode.ALREADY_EXISTS, "username already exists")
    }
    other = f"u{_unique()}"
    await _fails(auth.stub.Register(auth_pb2.RegisterRequest(
        username=other, email=f"{name}@example.com", password=password)),
        grpc.StatusCode.ALREADY_EXISTS, "email already exists")  # fmt: skip
    assert hashes.count(password) == 1


async def test_a_hashing_burst_is_refused_with_retry_after_not_timed_out(
    auth_database: str,
    redis_server: RedisServer,
    fake_users: tuple[FakeUsers, str],
    argon2_gate: tuple[threading.Event, list[str]],
) -> None:
    """More registrations than hashing slots plus queue: the rest get 429 with Retry-After at
    once, not a deadline. Hashes are held by a gate, so nothing here depends on timing."""
    opened, entered = argon2_gate
    limited = await _run(_settings(auth_database, redis_server.url, fake_users[1],
                                   argon2_max_concurrent=1, argon2_max_queued=2,
                                   argon2_queue_timeout_seconds=60))  # fmt: skip
    try:
        names = [f"u{_unique()}" for _ in range(10)]
        calls = [
            asyncio.ensure_future(limited.stub.Register(auth_pb2.RegisterRequest(
                username=n, email=f"{n}@example.com", password=PASSWORD)))
            for n in names
        ]  # fmt: skip
        # Refused while 3 are admitted.
        await eventually(lambda: sum(call.done() for call in calls) >= 7, what="the refusals")
        assert len(entered) == 1
        opened.set()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(refused) == 7
        for error in refused:
            assert (error.code(), error.details()) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many requests",
            )
            assert int(dict(error.trailing_metadata() or ())["retry-after"]) >= 1
    finally:
        opened.set()
        await limited.close()
