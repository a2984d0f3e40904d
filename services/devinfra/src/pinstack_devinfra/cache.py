"""Where downloads and builds are cached: outside the checkout, so fresh clones reuse them."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["cache_dir", "locked"]


def cache_dir(*parts: str) -> Path:
    """Return (and create) ``$PINSTACK_CACHE_DIR`` or ``~/.cache/pinstack``, joined with parts."""
    base = os.environ.get("PINSTACK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "pinstack"
    )
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold ``directory/.lock`` exclusively: one process installs a cached tool, the others wait
    (several test sessions start at once), then find it there."""
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
