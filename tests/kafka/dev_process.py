"""One real ``pinstack dev up`` stack in a temporary data directory on ephemeral ports.

Shared by the distributed-mode tests; the fixture runs ``dev down`` whatever happened, so no
detached process outlives a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pinstack_devinfra.ports import free_port

__all__ = ["DevStack", "dev_stack"]


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
