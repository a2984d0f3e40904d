"""An embedded stack of its own (every component, real PostgreSQL and Redis) for tests of the
gateway's HTTP server settings, and more gateways on the same services with other settings.

Its own, not the contract tests' shared stack: these tests use up per-address budgets of
127.0.0.1 and start gateways with odd settings, which must not leak into other tests.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pinstack_cli.embedded import EmbeddedStack
from pinstack_common.lifecycle import start_all, stop_all
from pinstack_gateway.app import GatewayComponent, create_component
from pinstack_gateway.settings import GatewaySettings
from tests.embedded import prepared_stack

__all__ = ["GatewayStack", "gateway_stack"]


@dataclass
class GatewayStack:
    embedded: EmbeddedStack
    gateway: GatewayComponent

    @contextlib.asynccontextmanager
    async def extra_gateway(self, **overrides: Any) -> AsyncIterator[GatewayComponent]:
        """Another gateway, on an ephemeral port, in front of the same services."""
        settings = GatewaySettings(**{**dict(self.gateway.settings), "http_port": 0, **overrides})
        gateway = create_component(settings)
        await gateway.start()
        try:
            yield gateway
        finally:
            await gateway.stop()

    async def register(self) -> str:
        """A new user's access token."""
        name = f"u{uuid.uuid4().hex[:10]}"
        body = {"username": name, "email": f"{name}@example.com", "password": "correct horse 1"}
        async with httpx.AsyncClient(base_url=self.gateway.url, timeout=10) as client:
            response = await client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["access_token"])


@contextlib.asynccontextmanager
async def gateway_stack(data_dir: Path, **settings: Any) -> AsyncIterator[GatewayStack]:
    """``settings`` go to every component (each takes the ones it knows), as ``up`` does."""
    with prepared_stack(data_dir, **settings) as embedded:
        started = await start_all(embedded.build())
        try:
            gateway = next(c for c in started if isinstance(c, GatewayComponent))
            yield GatewayStack(embedded=embedded, gateway=gateway)
        finally:
            await stop_all(started)
