"""The whole embedded stack (every component, real PostgreSQL and Redis) for HTTP contract tests.

One stack per session, started in the session's event loop exactly as ``pinstack up`` builds it;
tests talk to it over real HTTP. Every test registers its own users, so tests stay independent.
Every answer the stack's client receives is checked against the gateway's OpenAPI document
(``document.DocumentCheck``); the count is printed at the end of the run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pinstack_cli.embedded import EmbeddedStack
from pinstack_common.lifecycle import start_all, stop_all
from pinstack_gateway.openapi import OPENAPI_PATH
from tests.contract.document import DocumentCheck
from tests.embedded import prepared_stack

_CHECKS: list[DocumentCheck] = []
_TIER = Path(__file__).parent
_LAST = "test_every_documented_status_was_answered"
# Whether this session runs every contract test (filled at collection): only then can the
# tier's answers be judged as a whole.
WHOLE_TIER: list[bool] = []


@dataclass
class Account:
    id: int
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class RunningStack:
    url: str
    client: httpx.AsyncClient
    embedded: EmbeddedStack
    document: DocumentCheck

    async def register(self, **overrides: Any) -> Account:
        """Register a fresh user through the API and return its credentials."""
        suffix = uuid.uuid4().hex[:10]
        body = {
            "username": f"u{suffix}",
            "email": f"u{suffix}@example.com",
            "password": "correct horse battery",
            **overrides,
        }
        response = await self.client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        tokens = response.json()["data"]
        me = await self.client.get(f"/api/v1/users/username/{body['username']}")
        assert me.status_code == 200, me.text
        return Account(
            id=me.json()["data"]["id"],
            username=body["username"],
            email=body["email"],
            password=body["password"],
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with prepared_stack(tmp_path_factory.mktemp("pinstack")) as stack:
        yield stack


@pytest.fixture(scope="session")
async def stack(embedded_stack: EmbeddedStack) -> AsyncIterator[RunningStack]:
    components = embedded_stack.build()
    started = await start_all(components)
    url = f"http://127.0.0.1:{embedded_stack.http_port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            document = DocumentCheck(document=(await client.get(OPENAPI_PATH)).json())
            _CHECKS.append(document)
            client.event_hooks["response"].append(document.on_response)
            yield RunningStack(url=url, client=client, embedded=embedded_stack, document=document)
    finally:
        await stop_all(started)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The whole-tier judgement runs after every other test, and only on the whole tier."""
    last = [item for item in items if item.name == _LAST]
    items[:] = [item for item in items if item.name != _LAST] + last
    modules = {item.path for item in items if item.path.parent == _TIER}
    whole = modules == set(_TIER.glob("test_*.py")) and not (
        config.option.keyword or config.option.markexpr or config.option.deselect
    )
    WHOLE_TIER[:] = [True] if whole else []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many answers were checked against the OpenAPI document: every one the tier got."""
    if _CHECKS:
        checked = sum(check.checked for check in _CHECKS)
        terminalreporter.write_line(
            f"contract tests: {checked} answers matched the OpenAPI document"
        )
