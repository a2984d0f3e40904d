"""``pinstack dev up`` must not report a stack up on another process's answers.

A dummy HTTP server holds the gateway's port and answers ``/readyz`` with 200, as another
stack's gateway would; the gateway ``dev up`` starts dies on EADDRINUSE. ``dev up`` must fail,
say why, and leave nothing running.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pinstack_devinfra.ports import free_port
from pinstack_devinfra.procs import alive

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


class _AlwaysReady(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"ready"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def occupied_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _AlwaysReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def _dev(command: str, data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PINSTACK_DATA_DIR": str(data_dir),
        "PINSTACK_HTTP_PORT": str(port),
        "PINSTACK_DEV_EPHEMERAL_PORTS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "pinstack_cli", "dev", command],
        env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip


def test_dev_up_fails_when_another_process_answers_on_the_gateway_port(
    tmp_path: Path, occupied_port: int
) -> None:
    data_dir = tmp_path / "pinstack"
    try:
        result = _dev("up", data_dir, occupied_port)
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"dev up reported the stack up:\n{output}"
        assert "gateway" in output
        assert "address already in use" in output.lower(), output
        assert "is up" not in output
        # dev up stopped what it started on failure: no process of its state is left.
        state: dict[str, Any] = json.loads((data_dir / "dev" / "state.json").read_text())
        assert not [p for p in state["pids"].values() if p and alive(p)], state
        needle = str(data_dir).encode()
        left = [
            proc.name
            for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and alive(int(proc.name)) and needle in _cmdline(proc)
        ]
        assert not left, f"processes of the data dir left running: {left}"
    finally:
        _dev("down", data_dir, occupied_port)
