"""Clients for the in-cluster monitoring stack: Prometheus's HTTP API and the Alertmanager webhook
the tests listen on (both inside the cluster's network namespace)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from pinstack_devinfra.cluster.monitoring import WEBHOOK_PORT
from pinstack_devinfra.cluster.netns import NetnsThread

__all__ = ["Notification", "PrometheusApi", "Webhook", "poll"]

T = TypeVar("T")


def poll(what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 2) -> T:
    """``probe()`` until it returns something other than None (or AssertionError at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class PrometheusApi:
    """The parts of Prometheus's HTTP API the tests read (``/api/v1/...``)."""

    def __init__(self, *, base_url: str, netns: NetnsThread) -> None:
        self.base_url = base_url
        self.netns = netns

    def get(self, path: str, **params: str) -> Any:
        async def fetch() -> Any:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:
                response = await client.get(f"/api/v1/{path}", params=params)
            body = response.json()
            assert body.get("status") == "success", (path, params, response.text[:2000])
            return body["data"]

        return self.netns.run(fetch(), timeout=60)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's series (vector results only)."""
        data = self.get("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        return list(data["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.get("targets", state="active")["activeTargets"])

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.get("rules")["groups"])

    def ready(self) -> bool:
        try:
            self.get("status/runtimeinfo")
        except (httpx.HTTPError, OSError, AssertionError):
            return False
        return True


@dataclass(frozen=True)
class Notification:
    received: float  # time.monotonic() at arrival
    status: str  # "firing" or "resolved"
    labels: dict[str, str]


@dataclass
class Webhook:
    """An HTTP server in the cluster's network namespace that records Alertmanager's webhook
    notifications, one :class:`Notification` per alert in each."""

    netns: NetnsThread
    notifications: list[Notification] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.closing(writer):
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length)) if length else {}
            now = time.monotonic()
            for alert in body.get("alerts", []):
                self.notifications.append(
                    Notification(received=now, status=alert["status"], labels=alert["labels"])
                )
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()

    @contextlib.contextmanager
    def listening(self) -> Iterator[Webhook]:
        async def start() -> asyncio.Server:
            # Every address of the cluster's own network namespace: pods reach it at the node IP.
            return await asyncio.start_server(self._handle, "0.0.0.0", WEBHOOK_PORT)

        self._server = self.netns.run(start(), timeout=10)
        try:
            yield self
        finally:
            server, self._server = self._server, None

            async def stop() -> None:
                server.close()
                await server.wait_closed()

            self.netns.run(stop(), timeout=10)

    def wait_for(
        self, alertname: str, status: str, *, since: float, timeout: float, **labels: str
    ) -> float:
        """Seconds from ``since`` until a ``status`` notification of ``alertname`` (with
        ``labels``) arrived after ``since``."""

        def arrived() -> float | None:
            for note in list(self.notifications):
                matches = note.labels.get("alertname") == alertname and note.status == status
                if matches and note.received >= since and labels.items() <= note.labels.items():
                    return note.received - since
            return None

        return poll(f"{alertname} {status} {labels} at the webhook", arrived, timeout=timeout)
