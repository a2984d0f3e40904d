"""Self-healing and scale-out on the real cluster."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tests.cluster.api import Account
from tests.cluster.conftest import COMPONENTS, Fixtures, Installed, rollout_under_load


def _pods(installed: Installed, component: str) -> list[dict[str, Any]]:
    pods = installed.cluster.kubectl_json(
        "get", "pods", "-n", "default", "-l", f"app.kubernetes.io/component={component}"
    )["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_deleting_one_pod_of_each_component_under_load(
    installed: Installed, load_fixtures: Fixtures
) -> None:
    cluster = installed.cluster
    before = {c: {p["metadata"]["name"] for p in _pods(installed, c)} for c in COMPONENTS}
    assert all(len(names) >= 2 for names in before.values()), before
    victims = [min(before[c]) for c in COMPONENTS]
    report = rollout_under_load(
        installed,
        load_fixtures,
        what="one pod of each component deleted",
        change=lambda: cluster.kubectl("delete", "pod", "-n", "default", "--wait=false", *victims),
        settle=50,  # the replacements serve: keep the load on them for a while
    )
    after = {c: {p["metadata"]["name"] for p in _pods(installed, c)} for c in COMPONENTS}
    for component in COMPONENTS:
        assert len(after[component]) == len(before[component]), (component, after[component])
        assert not set(victims) & after[component]
    assert report.requests > 50, report
    # Only a request in flight on a deleted gateway pod may fail (one gateway pod was deleted).
    assert len(report.failures) <= 1, report.failures


def _ready_pod_urls(installed: Installed, component: str, port: int) -> list[str]:
    urls = []
    for pod in _pods(installed, component):
        statuses = pod["status"].get("containerStatuses") or []
        if statuses and all(s.get("ready") for s in statuses):
            urls.append(f"http://{pod['status']['podIP']}:{port}")
    return sorted(urls)


def test_two_gateways_two_notification_replicas_push_each_notification_once(
    installed: Installed,
) -> None:
    api = installed.api
    gateways = _ready_pod_urls(installed, "gateway", 8080)
    assert len(gateways) == 2, gateways
    assert len(_ready_pod_urls(installed, "notification", 50051)) == 2
    followers_count = 20

    async def follow(follower: Account, bob: Account) -> None:
        response = await api.request(
            "POST", "/api/v1/relation/follow", json={"followee_id": bob.id},
            headers=follower.headers,
        )  # fmt: skip
        assert response.status_code == 200, response.text

    async def scenario() -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]], int]:
        bob = await api.register()
        followers = [await api.register() for _ in range(followers_count)]
        barrier = await api.register()
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(api.socket(bob, base_url=url))
                       for url in gateways]  # fmt: skip
            for follower in followers:
                await follow(follower, bob)
            pushes = await asyncio.gather(
                *(s.collect(count=followers_count, within=120) for s in sockets)
            )
            # A duplicate would arrive before the barrier's notification, which comes next.
            await follow(barrier, bob)
            after = await asyncio.gather(*(s.collect(count=1, within=120) for s in sockets))
        return list(pushes), list(after), barrier.id

    received, after, barrier_id = api.netns.run(scenario(), timeout=400)
    for url, pushes, next_pushes in zip(gateways, received, after, strict=True):
        ids = [push["id"] for push in pushes]
        assert len(ids) == followers_count, (url, ids)
        assert len(set(ids)) == followers_count, (url, ids)
        assert {push["type"] for push in pushes} == {"follow_created"}
        assert [p["payload"]["follower_id"] for p in next_pushes] == [barrier_id], next_pushes


def test_revocation_and_login_limits_hold_across_gateway_replicas(installed: Installed) -> None:
    api = installed.api
    first, second = _ready_pod_urls(installed, "gateway", 8080)

    async def scenario() -> None:
        alice = await api.register()
        probe = await api.request(
            "GET", f"{second}/api/v1/notification/unread-count", headers=alice.headers
        )
        assert probe.status_code == 200, probe.text
        logout = await api.request(
            "POST", f"{first}/api/v1/auth/logout", json={"refresh_token": alice.refresh_token}
        )
        assert logout.status_code == 200, logout.text
        refused = await api.request(
            "GET", f"{second}/api/v1/notification/unread-count", headers=alice.headers
        )
        assert refused.status_code == 401, refused.text

        # Ten failures per account per minute, counted in Redis whichever gateway takes them.
        statuses = []
        for attempt in range(12):
            base = first if attempt % 2 else second
            response = await api.request(
                "POST", f"{base}/api/v1/auth/login",
                json={"login": alice.username, "password": "wrong password"},
            )  # fmt: skip
            statuses.append(response.status_code)
        assert statuses[:10] == [401] * 10, statuses
        assert statuses[10:] == [429, 429], statuses

    api.netns.run(scenario(), timeout=120)
