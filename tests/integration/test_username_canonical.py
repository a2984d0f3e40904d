"""Usernames are unique and found by their canonical form (issue 13, item 14).

Over HTTP against the whole embedded stack (real PostgreSQL and Redis), and the user service's
migration 0002 against a database holding rows written under the old ``lower(username)`` index.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pinstack_cli.embedded import EmbeddedStack
from pinstack_common.db import migrations
from pinstack_common.lifecycle import start_all, stop_all
from pinstack_devinfra.postgres import PostgresServer
from tests.conftest import new_database
from tests.embedded import prepared_stack

PASSWORD = "correct horse battery"
DOTTED_CAPITAL_I = "\u0130qX"  # İqX
DOTTED_SMALL_I = "i\u0307qX"  # i + COMBINING DOT ABOVE, qX
FULLWIDTH_ADMIN = "\uff21\uff24\uff2d\uff29\uff2e"


# -- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with prepared_stack(tmp_path_factory.mktemp("usernames")) as stack:
        yield stack


@pytest.fixture(scope="module")
async def client(embedded: EmbeddedStack) -> AsyncIterator[httpx.AsyncClient]:
    started = await start_all(embedded.build())
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{embedded.http_port}", timeout=30
        ) as http:
            yield http
    finally:
        await stop_all(started)


def suffix() -> str:
    """Latin letters only, so a test's names stay in one script and apart from other tests'."""
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


async def register(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/register",
        json={
            "username": username,
            "email": f"{uuid.uuid4().hex[:12]}@example.com",
            "password": PASSWORD,
        },
    )


async def lookup(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.get(f"/api/v1/users/username/{quote(username, safe='')}")


def token_user(access_token: str) -> int:
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["sub"])


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": status, "message": message}


async def test_both_dotted_i_spellings_are_one_username(client: httpx.AsyncClient) -> None:
    tail = suffix()
    first = await register(client, DOTTED_CAPITAL_I + tail)
    assert first.status_code == 201, first.text
    assert_error(await register(client, DOTTED_SMALL_I + tail), 409, "username already exists")
    assert_error(
        await register(client, DOTTED_SMALL_I.upper() + tail.upper()),
        409,
        "username already exists",
    )


@pytest.mark.parametrize("registered_as", [DOTTED_CAPITAL_I, DOTTED_SMALL_I])
async def test_either_spelling_finds_the_one_user(
    client: httpx.AsyncClient, registered_as: str
) -> None:
    tail = suffix()
    registered = await register(client, registered_as + tail)
    assert registered.status_code == 201, registered.text
    user_id = token_user(registered.json()["data"]["access_token"])
    for spelling in (DOTTED_SMALL_I + tail, DOTTED_CAPITAL_I + tail, "\u0130QX" + tail.upper()):
        found = await lookup(client, spelling)
        assert found.status_code == 200, (spelling, found.text)
        assert found.json()["data"]["id"] == user_id
        assert found.json()["data"]["username"] == registered_as + tail  # as typed


async def test_login_with_the_other_spelling_logs_into_the_same_account(
    client: httpx.AsyncClient,
) -> None:
    tail = suffix()
    registered = await register(client, DOTTED_CAPITAL_I + tail)
    assert registered.status_code == 201, registered.text
    user_id = token_user(registered.json()["data"]["access_token"])
    response = await client.post(
        "/api/v1/auth/login", json={"login": DOTTED_SMALL_I + tail, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert token_user(response.json()["data"]["access_token"]) == user_id


@pytest.mark.parametrize(
    "username",
    [
        "admin\u200b",  # zero-width space
        "\u202eadmin",  # right-to-left override
        "p\u0430ypal",  # a Cyrillic a (U+0430) among Latin letters
        "\u2066admin\u2069",  # bidi isolates
        "ad\u00admin",  # soft hyphen
        "ad\u0007min",  # a control character
    ],
)
async def test_invisible_and_mixed_script_usernames_are_400(
    client: httpx.AsyncClient, username: str
) -> None:
    assert_error(await register(client, username), 400, "validation failed")


async def test_fullwidth_admin_is_admin(client: httpx.AsyncClient) -> None:
    assert (await register(client, "admin")).status_code == 201
    assert_error(await register(client, FULLWIDTH_ADMIN), 409, "username already exists")
    assert (await lookup(client, FULLWIDTH_ADMIN)).json()["data"]["username"] == "admin"


async def test_renaming_to_another_spelling_of_a_taken_name_is_409(
    client: httpx.AsyncClient,
) -> None:
    tail = suffix()
    assert (await register(client, "owner" + tail)).status_code == 201
    other = await register(client, "other" + tail)
    token = other.json()["data"]["access_token"]
    fullwidth = "".join(chr(ord(c) - ord("a") + 0xFF41) for c in "owner" + tail)
    response = await client.put(
        "/api/v1/users",
        json={"id": token_user(token), "username": fullwidth},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_error(response, 409, "username already exists")
    response = await client.put(
        "/api/v1/users",
        json={"id": token_user(token), "username": "p\u0430ypal" + tail},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_error(response, 400, "validation failed")


# -- migration 0002 ------------------------------------------------------------------------------


async def _execute(url: str, statement: str, **params: object) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(sa.text(statement), params)
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def _indexes(url: str) -> set[str]:
    rows = await _execute(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'users'")
    return {str(row[0]) for row in rows}


async def test_migration_backfills_separates_collisions_and_downgrades(
    postgres_server: PostgresServer,
) -> None:
    url = new_database(postgres_server, "usernames_mig")
    migrations.upgrade(package="pinstack_user", url=url, revision="0001")
    # Written under the old index: each pair was two accounts because lower() told them apart.
    names = ["Alice", DOTTED_CAPITAL_I, DOTTED_SMALL_I, "admin", FULLWIDTH_ADMIN, "zoe"]
    for number, name in enumerate(names, start=1):  # ids 1, 2, ... in this order
        await _execute(
            url,
            "INSERT INTO users (username, email) VALUES (:name, :email)",
            name=name,
            email=f"u{number}@example.com",
        )

    migrations.upgrade(package="pinstack_user", url=url)
    rows = await _execute(url, "SELECT id, username, username_canonical FROM users ORDER BY id")
    assert [(row[0], row[1], row[2]) for row in rows] == [
        (1, "Alice", "alice"),
        (2, DOTTED_CAPITAL_I, "i\u0307qx"),  # the older account keeps the name
        (3, DOTTED_SMALL_I, "i\u0307qx@3"),  # no lookup reaches this key
        (4, "admin", "admin"),
        (5, FULLWIDTH_ADMIN, "admin@5"),
        (6, "zoe", "zoe"),
    ]
    indexes = await _indexes(url)
    assert "uq_users_username_canonical" in indexes
    assert "uq_users_username_lower" not in indexes
    with pytest.raises(sa.exc.IntegrityError):
        await _execute(
            url,
            "INSERT INTO users (username, username_canonical, email) "
            "VALUES ('ALICE', 'alice', 'x@example.com')",
        )
    # An older image (after a rollback) inserts without the column: the trigger fills it.
    await _execute(url, "INSERT INTO users (username, email) VALUES ('Legacy', 'l@example.com')")
    legacy = await _execute(url, "SELECT username_canonical FROM users WHERE username = 'Legacy'")
    assert legacy[0][0] == "legacy"

    # Downgrade refuses, changing nothing, while rows collide under lower().
    await _execute(
        url,
        "INSERT INTO users (username, username_canonical, email) "
        "VALUES ('ZOE', 'zoe-forced', 'z@example.com')",
    )
    with pytest.raises(RuntimeError, match="cannot restore the unique index on lower"):
        migrations.downgrade(package="pinstack_user", url=url, revision="0001")
    assert await migrations.current_revision(url=url) == "0002"
    await _execute(url, "DELETE FROM users WHERE username = 'ZOE'")

    migrations.downgrade(package="pinstack_user", url=url, revision="0001")
    assert await migrations.current_revision(url=url) == "0001"
    indexes = await _indexes(url)
    assert "uq_users_username_lower" in indexes
    assert "uq_users_username_canonical" not in indexes
    columns = await _execute(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'",
    )
    assert "username_canonical" not in {row[0] for row in columns}
    assert len(await _execute(url, "SELECT id FROM users")) == 7  # no row lost either way
    migrations.upgrade(package="pinstack_user", url=url)  # and up again
    assert await migrations.current_revision(url=url) == "0002"
