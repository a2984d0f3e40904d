"""``promtool`` from Debian's ``prometheus`` package (``apt-get download`` + ``dpkg-deb -x``: no
installation), cached, and the two checks the alert rules get from it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pinstack_devinfra.cache import build_once, cache_dir
from pinstack_devinfra.commands import ToolError, log, run

__all__ = ["promtool", "promtool_check_rules", "promtool_test_rules"]


def promtool() -> Path:
    """``promtool`` from Debian's ``prometheus`` package, extracted (not installed) and cached."""
    target = cache_dir("bin", "promtool-debian")
    binary = target / "promtool"
    build_once(target, done=binary.exists, build=lambda: _extract_promtool(binary))
    return binary


def _extract_promtool(binary: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ToolError(
            "promtool is needed for the alert-rule tests: on Debian/Ubuntu it is fetched "
            "with `apt-get download prometheus`; elsewhere put a promtool (Prometheus 2.x) "
            f"binary at {binary}"
        )
    log("fetching promtool from Debian's prometheus package")
    with tempfile.TemporaryDirectory() as scratch:
        result = run(["apt-get", "download", "prometheus"], cwd=Path(scratch), check=False)
        if result.returncode != 0 and os.geteuid() == 0:
            # A fresh machine (or container) often has no package lists yet.
            log("apt-get download failed; refreshing the package lists (apt-get update)")
            run(["apt-get", "update", "-qq"], check=False)
            result = run(["apt-get", "download", "prometheus"], cwd=Path(scratch), check=False)
        debs = list(Path(scratch).glob("prometheus_*.deb"))
        if result.returncode != 0 or not debs:
            raise ToolError(
                "`apt-get download prometheus` failed; run `apt-get update` (as root) once "
                f"and retry:\n{result.stderr[-2000:]}"
            )
        extracted = Path(scratch, "x")
        run(["dpkg-deb", "-x", debs[0], extracted])
        partial = binary.parent / ".promtool.partial"
        shutil.copy2(extracted / "usr" / "bin" / "promtool", partial)
        os.replace(partial, binary)


def promtool_check_rules(*files: Path) -> str:
    """``promtool check rules`` (syntax, PromQL, templates)."""
    return run([promtool(), "check", "rules", *files]).stdout


def promtool_test_rules(*files: Path, cwd: Path | None = None) -> str:
    """``promtool test rules`` (the rule unit tests)."""
    return run([promtool(), "test", "rules", *files], cwd=cwd).stdout
