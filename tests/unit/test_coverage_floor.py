"""The coverage floor only rises: ``fail_under`` is never below any earlier commit's."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _floor(pyproject: str) -> float:
    report = tomllib.loads(pyproject).get("tool", {}).get("coverage", {}).get("report", {})
    return float(report.get("fail_under", 0))


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def test_the_coverage_floor_never_drops() -> None:
    current = _floor((ROOT / "pyproject.toml").read_text())
    # Only the commits whose diff touched a fail_under line (a shallow clone sees fewer).
    commits = _git("log", "--format=%H", "-G", "fail_under", "--", "pyproject.toml").split()
    earlier = {commit[:12]: _floor(_git("show", f"{commit}:pyproject.toml")) for commit in commits}
    highest = max(earlier.values(), default=0.0)
    assert current >= highest, (
        f"the coverage floor fell to {current} from {highest} "
        f"(commit {max(earlier, key=earlier.__getitem__)}): raise coverage instead"
    )
