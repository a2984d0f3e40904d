"""A live embedded stack for the property-based API tests, served from its own thread.

Schemathesis and Hypothesis drive synchronous tests (blocking HTTP calls through ``requests``),
so the stack cannot live in the session's asyncio loop as the contract tier's ``stack`` does: a
blocking call would starve the loop that has to answer it. Here the stack is built exactly as the
contract tier builds it (``EmbeddedStack``: every component, real PostgreSQL and Redis, a data
directory and so a database of its own for this session) and its components run in a private
event loop on a background thread; tests reach it over real HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import httpx
import pytest

from pinstack_common.lifecycle import Component, start_all, stop_all
from tests.embedded import prepared_stack

START_TIMEOUT = 120.0
# Operations after whose success the caller's session may be gone (its user deleted, its
# password changed): the next request then carries a freshly registered user's token.
SESSION_ENDING = frozenset({"DELETE /api/v1/users/{user_id}", "POST /api/v1/auth/update-password"})


@dataclass(frozen=True)
class User:
    id: int
    username: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass(frozen=True)
class LiveStack:
    url: str

    def register(self) -> User:
        """A fresh user, registered and looked up through the API."""
        suffix = uuid.uuid4().hex[:10]
        body = {
            "username": f"p{suffix}",
            "email": f"p{suffix}@example.com",
            "password": "correct horse battery",
        }
        with httpx.Client(base_url=self.url, timeout=30) as client:
            registered = client.post("/api/v1/auth/register", json=body)
            assert registered.status_code == 201, registered.text
            found = client.get(f"/api/v1/users/username/{body['username']}")
            assert found.status_code == 200, found.text
        return User(
            id=found.json()["data"]["id"],
            username=body["username"],
            access_token=registered.json()["data"]["access_token"],
        )


class Caller:
    """The bearer token every generated request carries, and how many requests were sent."""

    def __init__(self, *, stack: LiveStack) -> None:
        self._stack = stack
        self.user = stack.register()
        self.requests = 0

    @property
    def headers(self) -> dict[str, str]:
        return self.user.headers

    def answered(self, label: str, status: int) -> None:
        self.requests += 1
        if label in SESSION_ENDING and status < 300:
            self.user = self._stack.register()


class _StackThread:
    """Runs the components in an event loop of their own until ``stop``."""

    def __init__(self, *, components: list[Component]) -> None:
        self._components = components
        self._loop = asyncio.new_event_loop()
        self._started: Future[None] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="property-stack", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.result(timeout=START_TIMEOUT)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=START_TIMEOUT)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            started = await start_all(self._components)
        except BaseException as failure:
            self._started.set_exception(failure)
            raise
        self._started.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await stop_all(started)


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with prepared_stack(tmp_path_factory.mktemp("pinstack-property")) as embedded:
        runner = _StackThread(components=embedded.build())
        runner.start()
        try:
            yield LiveStack(url=f"http://127.0.0.1:{embedded.http_port}")
        finally:
            runner.stop()


_CALLERS: list[Caller] = []


@pytest.fixture(scope="session")
def caller(live_stack: LiveStack) -> Caller:
    _CALLERS.append(Caller(stack=live_stack))
    return _CALLERS[-1]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many generated requests the property tests sent: the number CI should keep high."""
    if _CALLERS:
        sent = sum(caller.requests for caller in _CALLERS)
        terminalreporter.write_line(f"property tests: {sent} generated requests")
