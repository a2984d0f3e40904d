"""Progress lines for the long steps of the cluster tier (stderr, flushed, one prefix)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["log", "step"]


def log(message: str) -> None:
    sys.stderr.write(f"[pinstack-cluster] {message}\n")
    sys.stderr.flush()


@contextmanager
def step(what: str) -> Iterator[None]:
    """Log the start and the duration of one long step."""
    started = time.monotonic()
    log(f"{what} ...")
    yield
    log(f"{what}: done in {time.monotonic() - started:.0f}s")
