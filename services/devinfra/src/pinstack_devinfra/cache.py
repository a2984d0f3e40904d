"""Where downloads and builds are cached: outside the checkout, so fresh clones reuse them."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["build_once", "cache_dir"]


def cache_dir(*parts: str) -> Path:
    """Return (and create) ``$PINSTACK_CACHE_DIR`` or ``~/.cache/pinstack``, joined with parts."""
    base = os.environ.get("PINSTACK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "pinstack"
    )
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_once(directory: Path, *, done: Callable[[], bool], build: Callable[[], object]) -> None:
    """Run ``build`` unless ``done()``, holding ``directory/.lock``: one process installs a
    cached tool while the others (several test sessions start at once) wait, then find it done.
    ``build`` must finish with an atomic step (a rename), so ``done()`` never sees half of it."""
    if done():
        return
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if not done():
                build()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
