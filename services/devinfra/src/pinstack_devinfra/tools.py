"""``python -m pinstack_devinfra.tools {sync,render,check,install,actionlint}``: the chores.

- ``sync``: copy the CRD, dashboards and alert rules into the charts (:mod:`.chart_copies`);
- ``render``: ``sync``, then write ``manifests/operator.yaml`` (:mod:`.manifests`);
- ``check``: fail when either is stale (what the tests check);
- ``install``: fetch helm, helm-unittest, promtool and the OCI registry into the cache ahead of
  the tests;
- ``actionlint``: check the GitHub Actions workflows (``make lint``; builds actionlint once).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pinstack_devinfra.chart_copies import stale_chart_copies, sync_chart_copies
from pinstack_devinfra.commands import log, repo_root, run
from pinstack_devinfra.gotools import actionlint_binary, helm_binary
from pinstack_devinfra.helm import helm_unittest
from pinstack_devinfra.manifests import render_operator_manifest
from pinstack_devinfra.oci_registry import registry_binary
from pinstack_devinfra.promtool import promtool

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is 1 when ``check`` finds something stale."""
    parser = argparse.ArgumentParser(prog="python -m pinstack_devinfra.tools")
    parser.add_argument(
        "command",
        choices=["sync", "render", "check", "install", "actionlint"],
        help="sync: copy CRD/dashboards/alerts into the charts; render: write "
        "manifests/operator.yaml; check: fail if either is stale; install: fetch the tools; "
        "actionlint: check .github/workflows",
    )
    args = parser.parse_args(argv)
    root = repo_root()
    manifest = root / "manifests" / "operator.yaml"
    if args.command == "sync":
        for path in sync_chart_copies(root):
            log(f"updated {path.relative_to(root)}")
        return 0
    if args.command == "render":
        sync_chart_copies(root)
        manifest.write_text(render_operator_manifest(root))
        log(f"wrote {manifest.relative_to(root)}")
        return 0
    if args.command == "install":
        for tool in (helm_binary(), helm_unittest(), promtool(), registry_binary()):
            log(f"ready: {tool}")
        return 0
    if args.command == "actionlint":
        workflows = sorted((root / ".github" / "workflows").glob("*.y*ml"))
        if not workflows:
            log("no workflows under .github/workflows")
            return 1
        # -shellcheck= and -pyflakes= : the checks that need those tools installed are skipped
        # rather than depending on what the machine happens to have.
        result = run([actionlint_binary(), "-shellcheck=", "-pyflakes=", *workflows],
                     cwd=root, check=False)  # fmt: skip
        sys.stdout.write(result.stdout + result.stderr)
        return result.returncode
    problems = stale_chart_copies(root)
    if not manifest.exists() or manifest.read_text() != render_operator_manifest(root):
        problems.append(f"{manifest.relative_to(root)} is stale")
    for problem in problems:
        log(problem)
    if problems:
        log("run `uv run python -m pinstack_devinfra.tools render`")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
