"""Follow -> notification latency: from the follow call returning to the followee seeing it.

For each sample a follower follows a followee that has the notification WebSocket open; two
clocks stop: the WebSocket push carrying ``follow_created`` from that follower, and the return
of the first feed request that lists it (one request right after the push, then every 10 ms
until it shows). Both start when the follow call returns, as the contract words it ("readable
in the followee's feed well within one second of the follow call returning"); a notification
that arrives before the follow's answer counts as 0. Feed polling starts only after the push:
polling every 10 ms from the start would itself load a stack whose read knee is ~100 req/s.
Samples run one at a time, so this is the latency of an otherwise idle stack; each pair is
unfollowed afterwards so the seeded graph stays as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from typing import Any

import httpx
import websockets
from loadgen import percentile
from seed import BenchUser, Population

__all__ = ["follow_notification_latency"]

POLL_EVERY = 0.010
GIVE_UP = 10.0


class _Inbox:
    """Notifications pushed on one followee's socket, looked up by follower id."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.changed = asyncio.Event()

    async def pump(self, socket: Any) -> None:
        async for message in socket:
            item = json.loads(message)
            payload = item.get("payload") or {}
            if item.get("type") == "follow_created" and "follower_id" in payload:
                self.arrived.setdefault(int(payload["follower_id"]), time.perf_counter())
                self.changed.set()

    async def wait_for(self, follower: int) -> float:
        deadline = time.perf_counter() + GIVE_UP
        while follower not in self.arrived:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=deadline - time.perf_counter())
            if time.perf_counter() >= deadline:
                raise TimeoutError(f"no push for follower {follower}")
        return self.arrived.pop(follower)


async def _poll_feed(
    client: httpx.AsyncClient, followee: BenchUser, follower: int, newer_than: int
) -> float:
    headers = {"Authorization": f"Bearer {followee.access_token}"}
    deadline = time.perf_counter() + GIVE_UP
    while time.perf_counter() < deadline:
        reply = await client.get("/notification/feed?limit=20", headers=headers)
        now = time.perf_counter()
        for item in reply.json()["data"]["notifications"]:
            payload = item.get("payload") or {}
            if item["id"] > newer_than and payload.get("follower_id") == follower:
                return now
        await asyncio.sleep(POLL_EVERY)
    raise TimeoutError(f"follow of {follower} never reached the feed")


async def _newest_id(client: httpx.AsyncClient, user: BenchUser) -> int:
    reply = await client.get(
        "/notification/feed?limit=1", headers={"Authorization": f"Bearer {user.access_token}"}
    )
    items = reply.json()["data"]["notifications"]
    return int(items[0]["id"]) if items else 0


async def _sample(
    client: httpx.AsyncClient, inbox: _Inbox, follower: BenchUser, followee: BenchUser
) -> dict[str, float]:
    newer_than = await _newest_id(client, followee)
    auth = {"Authorization": f"Bearer {follower.access_token}"}
    sent = time.perf_counter()
    reply = await client.post(
        "/relation/follow", json={"followee_id": followee.user_id}, headers=auth
    )
    returned = time.perf_counter()
    try:
        if reply.status_code != 200:
            raise RuntimeError(f"follow answered {reply.status_code}: {reply.text[:200]}")
        pushed = await inbox.wait_for(follower.user_id)
        polled = await _poll_feed(client, followee, follower.user_id, newer_than)
    finally:
        await client.post(
            "/relation/unfollow", json={"followee_id": followee.user_id}, headers=auth
        )
    return {
        "follow_call_ms": (returned - sent) * 1000,
        "ws_ms": max(0.0, pushed - returned) * 1000,
        "feed_ms": max(0.0, polled - returned) * 1000,
    }


async def follow_notification_latency(
    api: str, population: Population, *, samples: int = 200, lanes: int = 1, seed: int = 7
) -> dict[str, Any]:
    """p50/p90/p99/max of push and feed latency over ``samples`` follows."""
    rng = random.Random(seed)
    followees = rng.sample(population.users, lanes)
    others = [u for u in population.users if u not in followees]
    edges = {frozenset(e) for e in population.edges}
    ws_url = api.replace("http://", "ws://") + "/notification/ws"
    results: list[dict[str, float]] = []
    failures: list[str] = []
    async with (
        httpx.AsyncClient(base_url=api, timeout=30.0) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        inboxes = []
        for followee in followees:
            socket = await stack.enter_async_context(
                websockets.connect(
                    ws_url, additional_headers={"Authorization": f"Bearer {followee.access_token}"}
                )
            )
            inbox = _Inbox()
            task = asyncio.create_task(inbox.pump(socket))
            stack.callback(task.cancel)
            inboxes.append(inbox)

        async def lane(index: int, count: int) -> None:
            followee = followees[index]
            candidates = [
                u for u in others if frozenset((u.user_id, followee.user_id)) not in edges
            ]
            for _ in range(count):
                follower = rng.choice(candidates)
                try:
                    results.append(await _sample(client, inboxes[index], follower, followee))
                except (RuntimeError, TimeoutError, httpx.HTTPError) as failure:
                    failures.append(str(failure))

        share = [samples // lanes + (i < samples % lanes) for i in range(lanes)]
        await asyncio.gather(*(lane(i, n) for i, n in enumerate(share)))

    def block(key: str) -> dict[str, float]:
        ordered = sorted(r[key] for r in results)
        return {
            q: percentile(ordered, p)
            for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        }

    return {
        "samples": len(results),
        "failures": len(failures),
        "failure_examples": failures[:5],
        "websocket_push_ms": block("ws_ms"),
        "feed_visible_ms": block("feed_ms"),
        "follow_call_ms": block("follow_call_ms"),
    }
