"""Swap components of the running dev stack for variants, and put the normal ones back.

A variant is started with the exact environment of the process it replaces (read from
``/proc/<pid>/environ``), so it listens on the same port with the same settings; ``pinstack dev
up`` afterwards respawns the normal process for every component whose recorded pid is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack import Stack, environ_of, pinstack_dev

__all__ = ["VARIANT", "restore", "stop", "swap"]

VARIANT = Path(__file__).resolve().parent / "serve_variant.py"


def _ready(stack: Stack, name: str, port: int) -> bool:
    if name == "gateway":
        try:
            url = f"{stack.base_url}/readyz"  # our own stack's http:// address
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - http, built above
                return int(reply.status) == 200
        except OSError:
            return False
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


def stop(pid: int, timeout: float = 30) -> None:
    """SIGTERM (components shut down gracefully), SIGKILL if it takes longer than ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if _gone(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def swap(
    stack: Stack, pids: dict[str, int], variants: dict[str, list[str]], *, tag: str
) -> dict[str, subprocess.Popen[bytes]]:
    """Replace each component in ``variants`` by ``serve_variant.py <name> <args>``.

    ``pids`` are the processes running now (updated in place with the variants' pids, so the
    resource monitor follows them). Returns once every variant answers its health check.
    """
    ports = json.loads((stack.data_dir / "dev" / "state.json").read_text())["ports"]
    started: dict[str, subprocess.Popen[bytes]] = {}
    for name, extra in variants.items():
        env = environ_of(pids[name])
        stop(pids[name])
        log = (stack.data_dir / "dev" / "logs" / f"{name}.{tag}.log").open("ab")
        command = [sys.executable, str(VARIANT), name, *extra]
        started[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        pids[name] = started[name].pid
    deadline = time.monotonic() + 90
    for name, process in started.items():
        while not _ready(stack, name, int(ports.get(name, 0))):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{name} ({tag}) did not come up; see logs/{name}.{tag}.log")
            time.sleep(0.3)
    return started


def restore(started: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop the variants and let ``pinstack dev up`` start the normal processes again."""
    for process in started.values():
        process.send_signal(signal.SIGTERM)
    for process in started.values():
        process.wait(timeout=60)
    pinstack_dev("up")
