"""HTTP contract of the auth and user routes (http-api.md), against the running embedded stack."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import jwt
import pytest

from tests.contract.conftest import RunningStack
from tests.polling import eventually


def unique() -> str:
    return uuid.uuid4().hex[:10]


def assert_error(response: object, status: int, message: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.json() == {"status": status, "message": message}  # type: ignore[attr-defined]


# --- register ----------------------------------------------------------------------------------


async def test_register_returns_token_pair(stack: RunningStack) -> None:
    name = f"u{unique()}"
    response = await stack.client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "password123"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == 201
    assert set(body["data"]) == {"access_token", "refresh_token"}


@pytest.mark.parametrize(
    "override",
    [
        {"username": "ab"},
        {"username": "x" * 33},
        {"username": "has space"},
        {"username": "has@at"},
        {"email": "not-an-email"},
        {"password": "short"},
        {"password": "p" * 129},
        {"avatar_url": "ftp://example.com/a.png"},
    ],
)
async def test_register_rejects_rule_breaking_input(
    stack: RunningStack, override: dict[str, str]
) -> None:
    name = f"u{unique()}"
    body = {"username": name, "email": f"{name}@example.com", "password": "password123", **override}
    assert_error(
        await stack.client.post("/api/v1/auth/register", json=body), 400, "validation failed"
    )


async def test_register_rejects_malformed_json(stack: RunningStack) -> None:
    response = await stack.client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid input")


async def test_register_conflicts_regardless_of_case(stack: RunningStack) -> None:
    account = await stack.register()
    other = unique()
    response = await stack.client.post(
        "/api/v1/auth/register",
        json={
            "username": account.username.upper(),
            "email": f"{other}@example.com",
            "password": "password123",
        },
    )
    assert_error(response, 409, "username already exists")
    response = await stack.client.post(
        "/api/v1/auth/register",
        json={"username": f"u{other}", "email": account.email.upper(), "password": "password123"},
    )
    assert_error(response, 409, "email already exists")


async def test_a_duplicate_registration_burst_answers_409_not_504(stack: RunningStack) -> None:
    """One 201, the rest 409: duplicates are found before the expensive password hash."""
    name = f"u{unique()}"
    body = {"username": name, "email": f"{name}@example.com", "password": "password123"}
    responses = await asyncio.gather(
        *(stack.client.post("/api/v1/auth/register", json=body) for _ in range(30))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 29, statuses
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "username already exists")


# --- login, refresh, logout ---------------------------------------------------------------------


async def test_login_by_username_and_by_email(stack: RunningStack) -> None:
    account = await stack.register()
    for login in (account.username, account.email, account.email.upper()):
        response = await stack.client.post(
            "/api/v1/auth/login", json={"login": login, "password": account.password}
        )
        assert response.status_code == 200, response.text
        assert set(response.json()["data"]) == {"access_token", "refresh_token"}


async def test_login_errors(stack: RunningStack) -> None:
    account = await stack.register()
    post = stack.client.post
    assert_error(
        await post(
            "/api/v1/auth/login", json={"login": account.username, "password": "wrong-password"}
        ),
        401,
        "invalid credentials",
    )
    assert_error(
        await post(
            "/api/v1/auth/login", json={"login": f"nobody{unique()}", "password": "password123"}
        ),
        404,
        "user not found",
    )
    assert_error(
        await post("/api/v1/auth/login", json={"login": "", "password": "password123"}),
        400,
        "validation failed",
    )
    assert_error(
        await post("/api/v1/auth/login", json={"login": account.username, "password": "short"}),
        400,
        "validation failed",
    )


async def test_refresh_rotates_and_reuse_revokes_the_family(stack: RunningStack) -> None:
    account = await stack.register()
    first = await stack.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert first.status_code == 200, first.text
    rotated = first.json()["data"]["refresh_token"]
    assert rotated != account.refresh_token
    # The consumed token is refused, and presenting it revokes the whole family ...
    reuse = await stack.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert_error(reuse, 401, "invalid refresh token")
    # ... so the token issued by the rotation stops working too.
    after = await stack.client.post("/api/v1/auth/refresh", json={"refresh_token": rotated})
    assert_error(after, 401, "invalid refresh token")


async def test_refresh_errors(stack: RunningStack) -> None:
    assert_error(
        await stack.client.post("/api/v1/auth/refresh", json={"refresh_token": ""}),
        400,
        "validation failed",
    )
    assert_error(
        await stack.client.post("/api/v1/auth/refresh", json={"refresh_token": "garbage"}),
        401,
        "invalid refresh token",
    )


async def test_refresh_token_is_not_a_bearer_token(stack: RunningStack) -> None:
    account = await stack.register()
    response = await stack.client.post(
        "/api/v1/auth/update-password",
        json={"old_password": account.password, "new_password": "another-password"},
        headers={"Authorization": f"Bearer {account.refresh_token}"},
    )
    assert_error(response, 401, "unauthenticated")


async def test_logout_ends_the_session(stack: RunningStack) -> None:
    account = await stack.register()
    response = await stack.client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
    )
    assert response.status_code == 200
    assert response.json() == {"status": 200}
    again = await stack.client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
    )
    assert_error(again, 401, "invalid refresh token")
    refresh = await stack.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert_error(refresh, 401, "invalid refresh token")
    assert_error(
        await stack.client.post("/api/v1/auth/logout", json={"refresh_token": ""}),
        400,
        "validation failed",
    )


async def test_update_password(stack: RunningStack) -> None:
    account = await stack.register()
    wrong = await stack.client.post(
        "/api/v1/auth/update-password",
        json={"old_password": "not-my-password", "new_password": "new-password-1"},
        headers=account.headers,
    )
    assert_error(wrong, 401, "invalid credentials")
    short = await stack.client.post(
        "/api/v1/auth/update-password",
        json={"old_password": account.password, "new_password": "short"},
        headers=account.headers,
    )
    assert_error(short, 400, "validation failed")
    response = await stack.client.post(
        "/api/v1/auth/update-password",
        json={"old_password": account.password, "new_password": "new-password-1"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": 200, "data": {"message": "Password updated successfully"}}
    # Every session ended; the new password works.
    refresh = await stack.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert_error(refresh, 401, "invalid refresh token")
    login = await stack.client.post(
        "/api/v1/auth/login", json={"login": account.username, "password": "new-password-1"}
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "unauthenticated"),
        ("Token abc", "invalid token"),
        ("Bearer not.a.jwt", "invalid token"),
    ],
)
async def test_bearer_errors(stack: RunningStack, header: str | None, message: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = await stack.client.put(
        "/api/v1/users/avatar", json={"avatar_url": "https://x.io/a.png"}, headers=headers
    )
    assert_error(response, 401, message)


# --- users ---------------------------------------------------------------------------------------


async def test_get_user_by_id_username_and_email(stack: RunningStack) -> None:
    account = await stack.register(full_name="Ada Lovelace")
    for path in (
        f"/api/v1/users/{account.id}",
        f"/api/v1/users/username/{account.username.upper()}",
        f"/api/v1/users/email/{account.email}",
    ):
        response = await stack.client.get(path)
        assert response.status_code == 200, response.text
        user = response.json()["data"]
        assert user["id"] == account.id
        assert user["username"] == account.username
        assert user["full_name"] == "Ada Lovelace"
        assert "bio" not in user
        assert "avatar_url" not in user
        assert "password" not in user
        assert user["created_at"].endswith("Z")


async def test_get_user_errors(stack: RunningStack) -> None:
    get = stack.client.get
    assert_error(await get("/api/v1/users/abc"), 400, "invalid input")
    assert_error(await get("/api/v1/users/0"), 400, "validation failed")
    assert_error(await get("/api/v1/users/999999999"), 404, "user not found")
    assert_error(await get(f"/api/v1/users/username/nobody{unique()}"), 404, "user not found")
    assert_error(await get("/api/v1/users/email/not-an-email"), 400, "validation failed")
    assert_error(
        await get(f"/api/v1/users/email/nobody{unique()}@example.com"), 404, "user not found"
    )


async def test_search_counts_all_matches_in_stable_order(stack: RunningStack) -> None:
    tag = unique()
    accounts = [
        await stack.register(username=f"s{tag}{i}", email=f"s{tag}{i}@example.com")
        for i in range(3)
    ]
    page1 = await stack.client.get(
        "/api/v1/users/search", params={"query": tag, "page": 1, "limit": 2}
    )
    page2 = await stack.client.get(
        "/api/v1/users/search", params={"query": tag, "page": 2, "limit": 2}
    )
    assert page1.status_code == 200, page1.text
    ids = [u["id"] for u in page1.json()["data"]["users"] + page2.json()["data"]["users"]]
    assert ids == [a.id for a in accounts]
    assert page1.json()["data"]["total"] == 3
    assert_error(
        await stack.client.get("/api/v1/users/search", params={"query": ""}),
        400,
        "invalid search query",
    )
    assert_error(await stack.client.get("/api/v1/users/search"), 400, "invalid search query")
    assert_error(
        await stack.client.get("/api/v1/users/search", params={"query": tag, "limit": 101}),
        400,
        "validation failed",
    )


async def test_create_user_makes_an_account_that_can_log_in(stack: RunningStack) -> None:
    admin = await stack.register()
    name = f"c{unique()}"
    body = {
        "username": name,
        "email": f"{name}@example.com",
        "password": "password123",
        "bio": "hi",
    }
    response = await stack.client.post("/api/v1/users", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert created["username"] == name
    assert created["bio"] == "hi"
    login = await stack.client.post(
        "/api/v1/auth/login", json={"login": name, "password": "password123"}
    )
    assert login.status_code == 200
    assert_error(await stack.client.post("/api/v1/users", json=body), 401, "unauthenticated")
    assert_error(
        await stack.client.post("/api/v1/users", json=body, headers=admin.headers),
        409,
        "username already exists",
    )


async def test_update_user(stack: RunningStack) -> None:
    account, other = await stack.register(), await stack.register()
    response = await stack.client.put(
        "/api/v1/users",
        json={"id": account.id, "full_name": "New Name", "bio": "bio"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["full_name"] == "New Name"
    put = stack.client.put
    assert_error(
        await put("/api/v1/users", json={"id": other.id, "bio": "x"}, headers=account.headers),
        403,
        "forbidden",
    )
    assert_error(
        await put(
            "/api/v1/users",
            json={"id": account.id, "username": other.username},
            headers=account.headers,
        ),
        409,
        "username already exists",
    )
    assert_error(
        await put(
            "/api/v1/users", json={"id": account.id, "email": "bad"}, headers=account.headers
        ),
        400,
        "validation failed",
    )


async def test_avatar(stack: RunningStack) -> None:
    account = await stack.register()
    response = await stack.client.put(
        "/api/v1/users/avatar",
        json={"avatar_url": "https://cdn.example.com/a.png"},
        headers=account.headers,
    )
    assert response.json() == {"status": 200}
    user = (await stack.client.get(f"/api/v1/users/{account.id}")).json()["data"]
    assert user["avatar_url"] == "https://cdn.example.com/a.png"
    for bad in ("", "not a url"):
        assert_error(
            await stack.client.put(
                "/api/v1/users/avatar", json={"avatar_url": bad}, headers=account.headers
            ),
            400,
            "validation failed",
        )


async def test_delete_user(stack: RunningStack) -> None:
    account, other = await stack.register(), await stack.register()
    assert_error(
        await stack.client.delete(f"/api/v1/users/{other.id}", headers=account.headers),
        403,
        "forbidden",
    )
    # Ownership is decided (and counted) in the user service; the stack shares this process.
    metrics = (await stack.client.get("/metrics")).text
    assert 'pinstack_authorization_total{result="denied"}' in metrics
    assert_error(
        await stack.client.delete("/api/v1/users/abc", headers=account.headers),
        400,
        "invalid input",
    )
    response = await stack.client.delete(f"/api/v1/users/{account.id}", headers=account.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await stack.client.get(f"/api/v1/users/{account.id}"), 404, "user not found")


# --- platform ------------------------------------------------------------------------------------


async def test_unknown_routes_and_methods_use_the_envelope(stack: RunningStack) -> None:
    assert_error(await stack.client.get("/api/v1/nope"), 404, "not found")
    assert_error(await stack.client.delete("/api/v1/auth/login"), 405, "method not allowed")


async def test_health_docs_jwks_and_request_id(stack: RunningStack) -> None:
    assert (await stack.client.get("/healthz")).status_code == 200
    assert (await stack.client.get("/readyz")).status_code == 200
    assert "swagger-ui" in (await stack.client.get("/swagger/index.html")).text
    assert (await stack.client.get("/swagger/static/swagger-ui-bundle.js")).status_code == 200
    doc = (await stack.client.get("/swagger/doc.json")).json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/auth/register" in doc["paths"]
    keys = (await stack.client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys
    assert all({"kid", "kty", "x"} <= set(k) for k in keys)
    response = await stack.client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert response.headers["x-request-id"] == "req-123"


async def test_metrics_are_labelled_by_route_template(stack: RunningStack) -> None:
    await stack.client.get("/api/v1/users/424242")
    text = (await stack.client.get("/metrics")).text
    assert 'route="/api/v1/users/{user_id}"' in text
    assert "/api/v1/users/424242" not in text
    assert "pinstack_grpc_client_requests_total" in text
    assert 'pinstack_proxy_requests_total{service="user"}' in text
    assert 'pinstack_proxy_errors_total{code="NOT_FOUND",service="user"}' in text


async def test_deleting_a_user_ends_their_sessions(stack: RunningStack) -> None:
    account = await stack.register()
    response = await stack.client.delete(f"/api/v1/users/{account.id}", headers=account.headers)
    assert response.status_code == 204
    # UserDeleted travels through the outbox, the relay and the bus to the auth service.

    async def refused() -> httpx.Response | None:
        refresh = await stack.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
        )
        return refresh if refresh.status_code == 401 else None

    refresh = await eventually(refused, within=5, what="the refresh token revoked")
    assert_error(refresh, 401, "invalid refresh token")
    login = await stack.client.post(
        "/api/v1/auth/login", json={"login": account.username, "password": account.password}
    )
    assert_error(login, 404, "user not found")


async def test_json_body_is_accepted_without_a_json_content_type(stack: RunningStack) -> None:
    # `curl -d` sends application/x-www-form-urlencoded; the original gateway parsed JSON anyway.
    name = f"u{unique()}"
    body = f'{{"username":"{name}","email":"{name}@example.com","password":"password123"}}'
    response = await stack.client.post(
        "/api/v1/auth/register",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201, response.text


async def test_login_failures_are_rate_limited_per_account(stack: RunningStack) -> None:
    account = await stack.register()
    body = {"login": account.username, "password": "wrong-password"}
    statuses = [
        (await stack.client.post("/api/v1/auth/login", json=body)).status_code for _ in range(12)
    ]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    limited = await stack.client.post("/api/v1/auth/login", json=body)
    assert_error(limited, 429, "too many requests")
    assert int(limited.headers["Retry-After"]) >= 1
    # Another account from the same address is not affected.
    other = await stack.register()
    ok = await stack.client.post(
        "/api/v1/auth/login", json={"login": other.username, "password": other.password}
    )
    assert ok.status_code == 200


async def test_ended_sessions_refuse_their_access_tokens(stack: RunningStack) -> None:
    account = await stack.register()
    avatar = {"avatar_url": "https://example.com/a.png"}
    logout = await stack.client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
    )
    assert logout.status_code == 200
    refused = await stack.client.put("/api/v1/users/avatar", json=avatar, headers=account.headers)
    assert_error(refused, 401, "unauthenticated")
    # A new session works; changing the password ends it, and a fresh login works again.
    login = await stack.client.post(
        "/api/v1/auth/login", json={"login": account.username, "password": account.password}
    )
    headers = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
    assert (
        await stack.client.put("/api/v1/users/avatar", json=avatar, headers=headers)
    ).status_code == 200
    # Revocation is by the second the password changed: a token issued in that same second
    # stays valid, so the change must fall in a later second than this token's issue.
    issued = jwt.decode(login.json()["data"]["access_token"], options={"verify_signature": False})
    await eventually(lambda: time.time() >= issued["iat"] + 1, within=5, what="the next second")
    change = await stack.client.post(
        "/api/v1/auth/update-password",
        json={"old_password": account.password, "new_password": "new-password-2"},
        headers=headers,
    )
    assert change.status_code == 200, change.text
    assert_error(
        await stack.client.put("/api/v1/users/avatar", json=avatar, headers=headers),
        401,
        "unauthenticated",
    )
