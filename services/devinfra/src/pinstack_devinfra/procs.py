"""What /proc says about a process, and how the servers here are stopped.

Two questions, kept apart because pids are reused: :func:`alive` asks whether a pid names a
process that has not exited; :func:`ours` asks whether it is still the process we started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["alive", "listens", "ours", "stop_processes"]


def alive(pid: int | None) -> bool:
    """True when ``pid`` names a process that has not exited.

    A zombie (state ``Z``, or ``X`` while it is being reaped) has exited and only waits for its
    parent to collect its status, so it is not alive, though ``kill(pid, 0)`` still succeeds on
    it. ``/proc/<pid>/stat`` is readable for every user's processes, so a process of another
    user (PostgreSQL runs as its own user under root) is seen as well. A pid of 0 or below is
    never alive: ``kill(2)`` reads those as process groups.
    """
    if pid is None or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The command name (2nd field) is in parentheses and may itself hold spaces and ")".
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] not in {"Z", "X"}


def ours(pid: int | None, *markers: str) -> bool:
    """Alive, and its command line still holds every marker: the pid was not reused since."""
    if pid is None or not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return all(marker.encode() in cmdline for marker in markers)


def stop_processes(
    pids: Iterable[int],
    *,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGKILL),
    timeout: float = 15.0,
) -> set[int]:
    """Send each signal in turn to the processes still alive, waiting up to ``timeout`` after
    each; return the pids that outlived the first signal (they were escalated)."""
    remaining = [pid for pid in pids if alive(pid)]
    escalated: set[int] = set()
    for index, sig in enumerate(signals):
        if not remaining:
            break
        if index:
            escalated.update(remaining)
        for pid in remaining:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            remaining = [pid for pid in remaining if alive(pid)]
            if remaining:
                time.sleep(0.05)
    return escalated


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (IPv4 or IPv6) in this network namespace."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, status, inode = fields[1], fields[3], fields[9]
            if status == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def listens(pid: int, port: int) -> bool:
    """True when process ``pid`` itself holds a socket listening on ``port``.

    An answer on the port alone proves nothing: another stack (or anything else) may hold it
    while the process we started dies on EADDRINUSE.
    """
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[len("socket:[") : -1] in inodes:
                return True
    return False
