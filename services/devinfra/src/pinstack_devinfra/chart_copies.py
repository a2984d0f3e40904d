"""Files Helm can only read from inside a chart (the CRD, the Grafana dashboards, the alert
rules) have one source of truth at the top of the repository and are *copied* into the charts
(and the operator's package data); tests fail when a copy is stale."""

from __future__ import annotations

import filecmp
import shutil
from dataclasses import dataclass
from pathlib import Path

from pinstack_devinfra.commands import repo_root

__all__ = ["Copy", "chart_copies", "stale_chart_copies", "sync_chart_copies"]


@dataclass(frozen=True)
class Copy:
    """One file with its source of truth outside a chart and its copy inside."""

    source: Path
    copy: Path


def chart_copies(root: Path | None = None) -> list[Copy]:
    """Every file copied into a chart: the CRD, the dashboards, the alert rules."""
    root = root or repo_root()
    copies = [
        Copy(
            root / "crds" / "pinstackstack.yaml",
            # Not the chart's crds/ (installed once, never upgraded): rendered by
            # templates/crd-pinstackstack.yaml, so `helm upgrade` upgrades it.
            root / "charts" / "pinstack-operator" / "files" / "crds" / "pinstackstack.yaml",
        )
    ]
    copies += [
        Copy(path, root / "charts" / "pinstack" / "files" / "dashboards" / path.name)
        for path in sorted((root / "dashboards").glob("*.json"))
    ]
    copies += [
        Copy(path, root / "charts" / "pinstack" / "files" / "alerts" / path.name)
        for path in sorted((root / "alerts").glob("*.rules.yaml"))
    ]
    # The operator ships the same rules in the PrometheusRule it manages (package data).
    copies += [
        Copy(path, root / "operator" / "src" / "pinstack_operator" / "alerts" / path.name)
        for path in sorted((root / "alerts").glob("*.rules.yaml"))
    ]
    return copies


def _orphans(root: Path) -> list[Path]:
    """Copies in the charts whose source is gone."""
    wanted = {c.copy for c in chart_copies(root)}
    found = [
        # The CRD's old place (Helm would install it from there once and never upgrade it).
        *(root / "charts" / "pinstack-operator" / "crds").glob("*.yaml"),
        *(root / "charts" / "pinstack-operator" / "files" / "crds").glob("*.yaml"),
        *(root / "charts" / "pinstack" / "files" / "dashboards").glob("*.json"),
        *(root / "charts" / "pinstack" / "files" / "alerts").glob("*.rules.yaml"),
        *(root / "operator" / "src" / "pinstack_operator" / "alerts").glob("*.rules.yaml"),
    ]
    return sorted(p for p in found if p not in wanted)


def _fresh(c: Copy) -> bool:
    return c.copy.exists() and filecmp.cmp(c.source, c.copy, shallow=False)


def stale_chart_copies(root: Path | None = None) -> list[str]:
    """Describe every copy that differs from its source (or should not exist)."""
    root = root or repo_root()
    problems = []
    for c in chart_copies(root):
        if not c.source.exists():
            problems.append(f"{c.source.relative_to(root)} is missing")
        elif not _fresh(c):
            problems.append(f"{c.copy.relative_to(root)} differs from {c.source.relative_to(root)}")
    problems += [f"{p.relative_to(root)} has no source any more" for p in _orphans(root)]
    return problems


def sync_chart_copies(root: Path | None = None) -> list[Path]:
    """Refresh every copy; remove orphans; return what changed."""
    root = root or repo_root()
    changed = []
    for c in chart_copies(root):
        if c.source.exists() and not _fresh(c):
            c.copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(c.source, c.copy)
            changed.append(c.copy)
    for orphan in _orphans(root):
        orphan.unlink()
        changed.append(orphan)
    return changed
