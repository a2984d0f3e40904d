"""Running the external commands devinfra needs: one error type, one progress line, one runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ToolError", "log", "repo_root", "run"]


class ToolError(RuntimeError):
    """A tool could not be installed or failed; the message says what to do."""


def log(message: str, *, prefix: str = "pinstack-devinfra") -> None:
    """One progress line on stderr: the first install or build of a tool takes minutes."""
    sys.stderr.write(f"[{prefix}] {message}\n")
    sys.stderr.flush()


def repo_root() -> Path:
    """The checkout this package is installed from (editable install): the dir with uv.lock."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "uv.lock").exists() and (parent / "services").is_dir():
            return parent
    raise ToolError("cannot find the repository root (a directory with uv.lock and services/)")


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (no shell), capturing its output; :class:`ToolError` on failure if ``check``."""
    result = subprocess.run(  # noqa: S603 - an argument list from our own code, never a shell
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise ToolError(
            f"`{' '.join(str(a) for a in args)}` failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result
