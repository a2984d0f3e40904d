"""Progress lines for the long steps of the cluster tier (stderr, flushed, one prefix)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from pinstack_devinfra import commands

__all__ = ["log", "step"]


def log(message: str) -> None:
    commands.log(message, prefix="pinstack-cluster")


@contextmanager
def step(what: str) -> Iterator[None]:
    """Log the start and the duration of one long step."""
    started = time.monotonic()
    log(f"{what} ...")
    yield
    log(f"{what}: done in {time.monotonic() - started:.0f}s")
