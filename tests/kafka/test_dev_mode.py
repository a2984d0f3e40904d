"""Smoke run of ``pinstack dev up`` / ``dev down``: the distributed mode as ``make dev-up`` runs it.

Real PostgreSQL, Redis and Kafka, one OS process per component, everything through the gateway
over HTTP. The data directory is a temp dir and every port is ephemeral, so this runs next to a
developer's own ``make dev-up`` and other test sessions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pinstack_devinfra.procs import alive
from pinstack_devinfra.redis import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

PASSWORD = "correct horse battery"


class DevStack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.durations: list[float] = []

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PINSTACK_DATA_DIR": str(self.data_dir),
            "PINSTACK_HTTP_PORT": str(self.http_port),
            "PINSTACK_DEV_EPHEMERAL_PORTS": "1",
        }
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pinstack_cli", "dev", command],
            env=env, capture_output=True, text=True, timeout=400, check=False,
        )  # fmt: skip
        if command == "up":
            self.durations.append(time.monotonic() - started)
        assert result.returncode == 0, f"dev {command} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def pids(self) -> dict[str, int]:
        state: dict[str, Any] = json.loads((self.data_dir / "dev" / "state.json").read_text())
        pids: dict[str, int] = state["pids"]
        return pids


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(tmp_path / "pinstack")
    try:
        yield stack
    finally:
        # Whatever happened, leave no detached process behind.
        stack.run("down")


def register(client: httpx.Client) -> tuple[str, int]:
    name = f"u{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    created = client.post("/api/v1/auth/register", json=body)
    assert created.status_code == 201, created.text
    me = client.get(f"/api/v1/users/username/{name}")
    assert me.status_code == 200, me.text
    return name, int(me.json()["data"]["id"])


def login(client: httpx.Client, name: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['data']['access_token']}"}


def wait_for_feed(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Poll the feed: the notification travels relation → Kafka → notification service."""
    deadline = time.monotonic() + 15
    while True:
        response = client.get("/api/v1/notification/feed", headers=headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["data"]["notifications"]
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


def test_dev_up_smoke_restart_down(dev_stack: DevStack) -> None:
    dev_stack.run("up")
    pids = dev_stack.pids()
    assert {"postgres", "redis", "kafka", "gateway", "user", "auth"} <= set(pids)
    logs = dev_stack.data_dir / "dev" / "logs"
    assert (logs / "gateway.log").exists()

    with httpx.Client(base_url=dev_stack.url, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        alice, _alice_id = register(client)
        bob, bob_id = register(client)
        alice_headers = login(client, alice)
        bob_headers = login(client, bob)
        user = client.get(f"/api/v1/users/{bob_id}")
        assert user.status_code == 200, user.text
        assert user.json()["data"]["username"] == bob

        followed = client.post(
            "/api/v1/relation/follow", json={"followee_id": bob_id}, headers=alice_headers
        )
        assert followed.status_code == 200, followed.text
        feed = wait_for_feed(client, bob_headers)
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
        login(client, alice)
        again = client.get(f"/api/v1/users/username/{bob}")
        assert again.status_code == 200, again.text
        assert again.json()["data"]["id"] == bob_id
        # The follow survived too (relation's database), and so did bob's notification.
        feed = wait_for_feed(client, login(client, bob))
        assert [item["type"] for item in feed] == ["follow_created"]
    print(f"dev up: cold {dev_stack.durations[0]:.1f}s, warm {dev_stack.durations[1]:.1f}s")  # noqa: T201
