"""Smoke run of ``pinstack dev up`` / ``dev down``: the distributed mode as ``make dev-up`` runs it.

Real PostgreSQL, Redis and Kafka, one OS process per component, everything through the gateway
over HTTP. The data directory is a temp dir and every port is ephemeral, so this runs next to a
developer's own ``make dev-up`` and other test sessions.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pinstack_devinfra.procs import alive
from tests.follow_burst import login, register
from tests.kafka.dev_process import DevStack, dev_stack
from tests.polling import wait_until

__all__ = ["dev_stack"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


def wait_for_feed(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Poll the feed: the notification travels relation → Kafka → notification service."""

    def items() -> list[dict[str, Any]]:
        response = client.get("/api/v1/notification/feed", headers=headers)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["data"]["notifications"]
        return found

    return wait_until(items, within=15, what="a notification in the feed")


def test_dev_up_smoke_restart_down(dev_stack: DevStack) -> None:
    dev_stack.run("up")
    pids = dev_stack.pids()
    assert {"postgres", "redis", "kafka", "gateway", "user", "auth"} <= set(pids)
    logs = dev_stack.data_dir / "dev" / "logs"
    assert (logs / "gateway.log").exists()

    with httpx.Client(base_url=dev_stack.url, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        alice, bob = register(client), register(client)
        user = client.get(f"/api/v1/users/{bob.user_id}")
        assert user.status_code == 200, user.text
        assert user.json()["data"]["username"] == bob.name

        followed = client.post(
            "/api/v1/relation/follow", json={"followee_id": bob.user_id}, headers=alice.headers
        )
        assert followed.status_code == 200, followed.text
        feed = wait_for_feed(client, bob.headers)
        assert [item["type"] for item in feed] == ["follow_created"]

    # Every service process serves its own Prometheus metrics in distributed mode.
    state = json.loads((dev_stack.data_dir / "dev" / "state.json").read_text())
    relation_metrics = httpx.get(f"http://127.0.0.1:{state['ports']['relation-metrics']}/metrics")
    assert "pinstack_follows_total 1.0" in relation_metrics.text

    status = dev_stack.run("status")
    assert "gateway" in status.stderr

    dev_stack.run("down")
    assert not any(alive(pid) for pid in pids.values())
    dev_stack.run("down")  # idempotent: nothing left to stop is not an error

    dev_stack.run("up")  # warm: same data directories, same ports
    with httpx.Client(base_url=dev_stack.url, timeout=10) as client:
        login(client, alice.name)
        again = client.get(f"/api/v1/users/username/{bob.name}")
        assert again.status_code == 200, again.text
        assert again.json()["data"]["id"] == bob.user_id
        # The follow survived too (relation's database), and so did bob's notification.
        feed = wait_for_feed(client, login(client, bob.name).headers)
        assert [item["type"] for item in feed] == ["follow_created"]
    print(f"dev up: cold {dev_stack.durations[0]:.1f}s, warm {dev_stack.durations[1]:.1f}s")  # noqa: T201 - the timing belongs in the run's output
