"""``python -m pinstack_devinfra.release {images,publish,charts,push-charts}`` (the make targets).

- ``images`` (``make images``): both images built locally with podman, saved as one archive;
- ``publish`` (``make release-images``, CI): amd64+arm64 images pushed and signed; digests
  written for ``charts``; with ``--check`` (``make release-images-check``) only built;
- ``charts`` (``make chart-release``): both charts pinned to a version and digests, packaged;
- ``push-charts`` (``make chart-push``, CI): the packages pushed to ``oci://<registry>/charts``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import yaml

from pinstack_devinfra.commands import ToolError, log, repo_root
from pinstack_devinfra.release.charts import (
    Release,
    check_version,
    package_release_charts,
    push_charts,
)
from pinstack_devinfra.release.images import (
    build_local_images,
    check_release_images,
    publish_images,
    write_digests,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pinstack_devinfra.release")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dist", type=Path, help="output directory (default: dist/)")
    commands = parser.add_subparsers(dest="command", required=True)
    images = commands.add_parser(
        "images", parents=[common], help="build both images locally (podman)"
    )
    images.add_argument("--tag", default="", help="image tag (default: the charts' appVersion)")
    for name, text in (
        ("publish", "build amd64+arm64 images with docker buildx, push, cosign-sign"),
        ("charts", "pin both charts to a version and image digests, helm package"),
        ("push-charts", "helm push the packaged charts to oci://<registry>/charts"),
    ):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("--version", required=True, type=check_version, help="e.g. 1.2.3")
        command.add_argument("--registry", required=True, help="e.g. ghcr.io/pinstack")
        if name == "publish":
            command.add_argument(
                "--check", action="store_true", help="build every platform; push and sign nothing"
            )
        if name == "charts":
            command.add_argument("--app-digest", required=True, help="sha256:... of pinstack")
            command.add_argument(
                "--operator-digest", required=True, help="sha256:... of pinstack-operator"
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a :class:`ToolError` becomes its message and exit status 1."""
    try:
        return _run(_parser().parse_args(argv))
    except ToolError as error:
        log(str(error))
        return 1


def _run(args: argparse.Namespace) -> int:
    repo = repo_root()
    dist: Path = args.dist or repo / "dist"
    if args.command == "images":
        chart = yaml.safe_load((repo / "charts" / "pinstack" / "Chart.yaml").read_text())
        tag = args.tag or str(chart["appVersion"])
        archive = dist / f"images-{tag}.tar"
        build_local_images(repo=repo, tag=tag, archive=archive)
        log(f"saved to {archive} (docker load -i / kind load image-archive / ctr images import)")
        return 0
    release = Release(repo=repo, version=args.version, registry=args.registry, dist=dist)
    if args.command == "publish" and args.check:
        check_release_images(release)
    elif args.command == "publish":
        digests = publish_images(release)
        log(f"digests in {write_digests(digests, dist / 'digests.env')}")
    elif args.command == "charts":
        digests = {"pinstack": args.app_digest, "pinstack-operator": args.operator_digest}
        for package in package_release_charts(release, digests=digests):
            log(f"packaged {package}")
    else:
        for report in push_charts(release):
            log(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
