"""An embedded stack (every component, real PostgreSQL and Redis) prepared in a directory of
its own: the one way the suite builds one in-process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from pinstack_cli.embedded import EmbeddedStack
from pinstack_devinfra.ports import free_port

__all__ = ["prepared_stack"]


@contextlib.contextmanager
def prepared_stack(data_dir: Path, **settings: Any) -> Iterator[EmbeddedStack]:
    """PostgreSQL and Redis started, databases migrated, on a free HTTP port; ``settings`` go
    to every component (each takes the ones it knows), as ``pinstack up`` does. Stopped (and
    a failed start unwound) on exit."""
    stack = EmbeddedStack(
        data_dir=data_dir,
        http_port=free_port(),
        console=Console(stderr=True, quiet=True),
        extra_settings=dict(settings),
    )
    try:
        stack.prepare()
        yield stack
    finally:
        stack.shutdown()
