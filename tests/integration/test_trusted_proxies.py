"""X-Forwarded-For counts only from configured proxies (issue 13, item 4).

uvicorn believes forwarding headers from loopback by default, so a client could name a new
address on every login and never reach the per-address limit. The gateway believes them only
from ``trusted_proxies`` (none by default: the socket's peer is the client).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from pinstack_gateway.settings import GatewaySettings
from tests.integration.gateway_stack import GatewayStack, gateway_stack

LIMIT = 5  # failed logins per client address and minute, in this test's stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayStack]:
    async with gateway_stack(
        tmp_path_factory.mktemp("proxies"), login_failures_per_address=f"{LIMIT}/minute"
    ) as running:
        yield running


async def failed_logins(url: str, forwarded_for: list[str]) -> list[int]:
    """One failed login (an unknown login, new each time, so only the address limit applies)
    per X-Forwarded-For value, in order, from this one client; their statuses."""
    statuses = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for address in forwarded_for:
            response = await client.post(
                "/api/v1/auth/login",
                json={"login": f"nobody{uuid.uuid4().hex[:10]}", "password": "wrong password"},
                headers={"X-Forwarded-For": address},
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["message"] == "too many requests"
    return statuses


async def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_login_limit(
    stack: GatewayStack,
) -> None:
    # The stack's own gateway has the default settings: no trusted proxy.
    varied = [f"198.51.100.{n}" for n in range(LIMIT + 3)]
    statuses = await failed_logins(stack.gateway.url, varied)
    assert statuses == [404] * LIMIT + [429] * 3


async def test_a_trusted_proxy_forwards_the_client_address(stack: GatewayStack) -> None:
    # A CIDR, as for an ingress controller's pod network; this test's client is the proxy.
    async with stack.extra_gateway(trusted_proxies=["127.0.0.0/8"]) as behind_proxy:
        first = await failed_logins(behind_proxy.url, ["203.0.113.7"] * (LIMIT + 1))
        assert first == [404] * LIMIT + [429]
        # Another client behind the same proxy has its own budget; the right-most address the
        # proxy appended is the one counted, whatever the client put in front of it.
        second = await failed_logins(behind_proxy.url, ["203.0.113.7, 203.0.113.8"] * LIMIT)
        assert second == [404] * LIMIT


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    settings = GatewaySettings(
        internal_token="test-token",
        trusted_proxies=[" 10.244.1.7/16", "::1", "192.0.2.10"],
    )
    # Canonical forms: uvicorn would take "10.244.1.7/16" (host bits set) as a literal that
    # never matches a peer.
    assert settings.trusted_proxies == ["10.244.0.0/16", "::1", "192.0.2.10"]
    for bad in ("ingress-nginx", "*", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="trusted_proxies"):
            GatewaySettings(internal_token="test-token", trusted_proxies=[bad])
