"""Every gateway answer carries the security headers; CORS is off unless a deployment sets it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from pinstack_devinfra.ports import free_port
from pinstack_gateway.app import create_app
from pinstack_gateway.middleware import STRICT_CSP
from pinstack_gateway.settings import GatewaySettings
from pinstack_gateway.upstreams import Upstreams


def _settings(**overrides: object) -> GatewaySettings:
    nobody = f"127.0.0.1:{free_port()}"
    return GatewaySettings(
        user_addr=nobody,
        auth_addr=nobody,
        post_addr=nobody,
        relation_addr=nobody,
        notification_addr=nobody,
        rpc_timeout_seconds=0.5,
        internal_token="test-internal-token",
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client_for() -> AsyncIterator[object]:
    opened: list[Upstreams] = []

    def make(**overrides: object) -> httpx.AsyncClient:
        settings = _settings(**overrides)
        upstreams = Upstreams.open(settings)
        opened.append(upstreams)
        app = create_app(settings=settings, upstreams=upstreams)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")

    yield make
    for upstreams in opened:
        await upstreams.close()


def _assert_secure(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/notification/feed", 401),
        ("GET", "/no/such/route", 404),
        ("POST", "/api/v1/auth/login", 400),
    ],
)
async def test_every_answer_has_security_headers(
    client_for: object, method: str, path: str, status: int
) -> None:
    async with client_for() as client:  # type: ignore[operator]
        response = await client.request(method, path, content=b"{")
    assert response.status_code == status, response.text
    _assert_secure(response)
    assert response.headers["content-security-policy"] == STRICT_CSP


async def test_swagger_page_allows_only_its_own_assets(client_for: object) -> None:
    async with client_for() as client:  # type: ignore[operator]
        page = await client.get("/swagger/index.html")
        asset = await client.get("/swagger/static/swagger-ui-bundle.js")
    assert page.status_code == 200
    _assert_secure(page)
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy
    assert "unsafe-eval" not in policy
    assert "http" not in policy  # no CDN
    assert "default-src 'none'" in policy
    assert asset.status_code == 200
    _assert_secure(asset)


async def test_cors_is_off_by_default(client_for: object) -> None:
    async with client_for() as client:  # type: ignore[operator]
        response = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        preflight = await client.options(
            "/api/v1/auth/login",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_configured_origins_only(client_for: object) -> None:
    async with client_for(cors_origins=["https://app.example"]) as client:  # type: ignore[operator]
        allowed = await client.options(
            "/api/v1/auth/login",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        simple = await client.get("/healthz", headers={"Origin": "https://app.example"})
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    _assert_secure(allowed)
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
