"""A small Pinstack API client for the cluster tier, running inside the cluster's network.

Every request goes through :class:`NetnsThread`, so its sockets live in the cluster's network
namespace; the gateway is reached through its Service's cluster IP (kube-proxy), as another pod
would reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

from pinstack_devinfra.cluster.netns import NetnsThread

PASSWORD = "correct horse battery"


@dataclass
class Account:
    id: int
    username: str
    access_token: str
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class PushSocket:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self._ws = ws

    async def collect(self, *, count: int, within: float) -> list[dict[str, Any]]:
        """Up to ``count`` pushes, or what arrived within ``within`` seconds."""
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while len(received) < count and time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(self._ws.recv(), deadline - time.monotonic())
            except TimeoutError:
                break
            received.append(json.loads(message))
        return received


class ApiClient:
    def __init__(self, *, base_url: str, netns: NetnsThread) -> None:
        self.base_url = base_url
        self.netns = netns
        self._client: httpx.AsyncClient | None = None

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=30)
        return self._client

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        client = await self._http()
        return await client.request(method, path, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request from the namespace thread (blocking the caller until it answers)."""
        return self.netns.run(self.request(method, path, **kwargs), timeout=60)

    def wait_until_serving(self, *, timeout: float) -> None:
        """Poll the gateway until a public read (user) and a login (auth) both answer: the
        gateway's channel to a service that started after it may still be backing off."""
        deadline = time.monotonic() + timeout
        last: str = ""
        wrong = {"login": "nobody", "password": "not the password"}
        while time.monotonic() < deadline:
            try:
                search = self.call("GET", "/api/v1/users/search", params={"query": "x"})
                login = self.call("POST", "/api/v1/auth/login", json=wrong)
                if search.status_code == 200 and login.status_code in {401, 404}:
                    return
                last = f"{search.status_code} / {login.status_code} {login.text[:200]}"
            except (httpx.HTTPError, OSError) as error:
                last = repr(error)
            time.sleep(1)
        raise AssertionError(f"the API did not answer within {timeout:.0f}s: {last}")

    async def register(self) -> Account:
        suffix = uuid.uuid4().hex[:10]
        body = {"username": f"k{suffix}", "email": f"k{suffix}@example.com", "password": PASSWORD}
        response = await self.request("POST", "/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        me = await self.request("GET", f"/api/v1/users/username/{body['username']}")
        assert me.status_code == 200, me.text
        return Account(
            id=me.json()["data"]["id"],
            username=body["username"],
            access_token=response.json()["data"]["access_token"],
            refresh_token=response.json()["data"]["refresh_token"],
        )

    async def login(self, account: Account) -> Account:
        response = await self.request(
            "POST", "/api/v1/auth/login", json={"login": account.username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        account.access_token = response.json()["data"]["access_token"]
        return account

    def ws_url(self, base_url: str | None = None) -> str:
        return (base_url or self.base_url).replace("http://", "ws://") + "/api/v1/notification/ws"

    @contextlib.asynccontextmanager
    async def socket(
        self, account: Account, *, base_url: str | None = None
    ) -> AsyncIterator[PushSocket]:
        """A WebSocket open as ``account`` (on ``base_url``, default the Service); the handshake
        has completed, so whatever is created from here on must arrive on it."""
        url = self.ws_url(base_url)
        async with websockets.connect(url, additional_headers=account.headers) as ws:
            yield PushSocket(ws)

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            self.netns.run(client.aclose(), timeout=30)
