"""Where downloads and builds are cached: outside the checkout, so fresh clones reuse them."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(*parts: str) -> Path:
    """Return (and create) ``$PINSTACK_CACHE_DIR`` or ``~/.cache/pinstack``, joined with parts."""
    base = os.environ.get("PINSTACK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "pinstack"
    )
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
