"""``pinstack up`` as a user runs it: a real process, Ctrl-C, restart, accounts still there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from pinstack_devinfra.ports import free_port
from tests.polling import wait_until


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PINSTACK_DATA_DIR": str(data_dir), "PINSTACK_HTTP_PORT": str(port)}
    env.pop("PINSTACK_REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "pinstack_cli", "up"], env=env)


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:

    def ready() -> bool:
        assert process.poll() is None, "pinstack up exited during start-up"
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, within=timeout, what="pinstack up to become ready")


def interrupt(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


def test_accounts_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    name = f"r{uuid.uuid4().hex[:10]}"
    first = start(tmp_path, port)
    try:
        wait_ready(base, first)
        body = {"username": name, "email": f"{name}@example.com", "password": "password123"}
        assert httpx.post(f"{base}/api/v1/auth/register", json=body).status_code == 201
    finally:
        assert interrupt(first) == 0, "Ctrl-C should stop pinstack up cleanly"
    second = start(tmp_path, port)
    try:
        wait_ready(base, second)
        login = httpx.post(
            f"{base}/api/v1/auth/login", json={"login": name, "password": "password123"}
        )
        assert login.status_code == 200, login.text
        access = login.json()["data"]["access_token"]
        me = httpx.get(f"{base}/api/v1/users/username/{name}")
        assert me.json()["data"]["username"] == name
        # Tokens signed before the restart still verify: the signing key is persisted.
        avatar = httpx.put(
            f"{base}/api/v1/users/avatar",
            json={"avatar_url": "https://example.com/a.png"},
            headers={"Authorization": f"Bearer {access}"},
        )
        assert avatar.status_code == 200, avatar.text
    finally:
        assert interrupt(second) == 0
