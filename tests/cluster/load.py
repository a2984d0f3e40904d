"""A low steady load through the gateway's Service that records every failed request.

Each request opens its own connection (as many independent clients would), so a request fails
only if it was in flight on a pod that went away — not because a kept-alive connection pointed
at a pod that has since been replaced. The reads cover every backend service.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from tests.cluster.api import Account, ApiClient


@dataclass
class Failure:
    at: float
    path: str
    detail: str


@dataclass
class LoadReport:
    requests: int = 0
    failures: list[Failure] = field(default_factory=list)


class SteadyLoad:
    """``rate`` requests per second until :meth:`stop`; run on the cluster's netns thread."""

    def __init__(self, api: ApiClient, *, account: Account, post_id: int, rate: float = 10) -> None:
        self._api = api
        self._account = account
        self._paths = [
            (f"/api/v1/users/{account.id}", False),
            (f"/api/v1/posts/{post_id}", False),
            (f"/api/v1/relation/{account.id}/followers", False),
            ("/api/v1/notification/unread-count", True),
        ]
        self._interval = 1 / rate
        self._stopped = False
        self.report = LoadReport()

    async def run(self) -> LoadReport:
        tasks: set[asyncio.Task[None]] = set()
        index = 0
        next_at = time.monotonic()
        while not self._stopped:
            path, authenticated = self._paths[index % len(self._paths)]
            index += 1
            task = asyncio.create_task(self._one(path, authenticated=authenticated))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += self._interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if tasks:
            await asyncio.gather(*tasks)
        return self.report

    async def _one(self, path: str, *, authenticated: bool) -> None:
        headers = {"Connection": "close", **(self._account.headers if authenticated else {})}
        self.report.requests += 1
        try:
            async with httpx.AsyncClient(base_url=self._api.base_url, timeout=10) as client:
                response = await client.get(path, headers=headers)
            if response.status_code != 200:
                detail = f"{response.status_code} {response.text[:200]}"
                self.report.failures.append(Failure(time.monotonic(), path, detail))
        except httpx.HTTPError as error:
            self.report.failures.append(Failure(time.monotonic(), path, repr(error)))

    def wait_for_requests(self, count: int, *, timeout: float = 60) -> None:
        """Block (another thread) until ``count`` more requests have been sent."""
        target = self.report.requests + count
        deadline = time.monotonic() + timeout
        while self.report.requests < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the load stalled at {self.report.requests} requests")
            time.sleep(0.1)

    def stop(self) -> None:
        """Ask :meth:`run` to finish (from any thread: it checks a flag between requests)."""
        self._stopped = True
