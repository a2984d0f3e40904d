"""What /proc says about a process: the checks the servers here and their tests share."""

from __future__ import annotations

from pathlib import Path

__all__ = ["alive"]


def alive(pid: int) -> bool:
    """A live, non-zombie process (a child nobody reaped yet lingers in state Z)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False
