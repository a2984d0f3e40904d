"""``pinstack_devinfra.procs``: the one answer to "is that process alive, and is it ours"."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinstack_devinfra.procs import alive, ours, stop_processes


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


@pytest.fixture
def zombie() -> Iterator[int]:
    """An exited, unreaped child whose command name holds a space (as thread names may)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "open('/proc/self/comm', 'w').write('pin stack')"]
    )
    deadline = time.monotonic() + 30
    while _state(child.pid) != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    try:
        yield child.pid
    finally:
        child.wait()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "marker-x"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_running_process_is_alive() -> None:
    assert alive(os.getpid())


def test_a_zombie_is_not_alive_whatever_its_name(zombie: int) -> None:
    # kill(pid, 0) succeeds on a zombie, and a name with a space shifted the old field split.
    os.kill(zombie, 0)
    assert not alive(zombie)
    assert not ours(zombie, "python")


def test_process_groups_and_missing_pids_are_not_alive() -> None:
    assert not alive(0)  # kill(0, 0) would succeed: it addresses our own process group
    assert not alive(-1)
    assert not alive(None)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names nothing now
    assert not alive(child.pid)


def test_ours_needs_every_marker_in_the_command_line(sleeper: subprocess.Popen[bytes]) -> None:
    assert ours(sleeper.pid, "marker-x")
    assert ours(sleeper.pid, "marker-x", "time.sleep")
    # A reused pid: alive, but running something else than what we started.
    assert alive(sleeper.pid)
    assert not ours(sleeper.pid, "marker-x", "kafka.Kafka")


def test_stop_processes_escalates_past_an_ignored_sigterm() -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
         "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert stubborn.stdout is not None
    try:
        assert stubborn.stdout.readline() == b"ready\n"
        assert stop_processes([stubborn.pid], timeout=0.5) == {stubborn.pid}
        assert not alive(stubborn.pid)
    finally:
        stubborn.kill()
        stubborn.wait()
        stubborn.stdout.close()  # else its GC warns (an error under strict pytest) in a later test


def test_stop_processes_ends_a_well_behaved_process_with_the_first_signal(
    sleeper: subprocess.Popen[bytes],
) -> None:
    assert stop_processes([sleeper.pid], timeout=30) == set()
    assert not alive(sleeper.pid)
