"""Both charts pinned to one release and packaged, then pushed as OCI artifacts.

The pinned copy differs from the checkout in four places only: Chart.yaml's ``version`` and
``appVersion`` (``helm package --version/--app-version``) and values.yaml's ``image.repository``,
``image.tag`` and ``image.digest``. values.yaml is edited line by line, not re-dumped, so the
packaged file keeps its comments (it is the chart's documentation of every value).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pinstack_devinfra.commands import ToolError, run
from pinstack_devinfra.gotools import helm_binary
from pinstack_devinfra.helm import helm_lint

__all__ = [
    "RELEASE_IMAGES",
    "Release",
    "ReleaseImage",
    "check_digest",
    "check_version",
    "package_release_charts",
    "pin_values",
    "push_charts",
]

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True, kw_only=True)
class ReleaseImage:
    """One published image: its name under the registry, its Dockerfile and its chart."""

    name: str
    dockerfile: str
    chart: str


# The app image, then the operator's (the order ``make release-images`` reports digests in).
RELEASE_IMAGES = (
    ReleaseImage(name="pinstack", dockerfile="Dockerfile", chart="charts/pinstack"),
    ReleaseImage(
        name="pinstack-operator",
        dockerfile="Dockerfile.operator",
        chart="charts/pinstack-operator",
    ),
)


@dataclass(frozen=True, kw_only=True)
class Release:
    """Where a release comes from (``repo``), what it is called and where it goes."""

    repo: Path
    version: str  # SemVer, without the tag's "v"
    registry: str  # e.g. ghcr.io/pinstack: images <registry>/<name>, charts <registry>/charts
    dist: Path  # the packaged charts and the digests file

    def __post_init__(self) -> None:
        check_version(self.version)

    def image(self, name: str) -> str:
        return f"{self.registry.rstrip('/')}/{name}"

    def charts(self) -> str:
        """Where the chart packages are pushed (``helm install <this>/pinstack``)."""
        return f"oci://{self.registry.rstrip('/')}/charts"

    def chart_package(self, image: ReleaseImage) -> Path:
        return self.dist / f"{Path(image.chart).name}-{self.version}.tgz"


def check_version(version: str) -> str:
    """A SemVer 2 version without the tag's ``v`` (Helm requires SemVer for chart versions)."""
    if not _SEMVER.match(version):
        raise ToolError(f"version {version!r} is not SemVer (e.g. 1.2.3 for the tag v1.2.3)")
    return version


def check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise ToolError(f"image digest {digest!r} is not sha256:<64 hex digits>")
    return digest


def pin_values(text: str, *, repository: str, tag: str, digest: str) -> str:
    """values.yaml ``text`` with its top-level ``image`` block's three keys set."""
    wanted = {"repository": repository, "tag": tag, "digest": digest}
    lines = text.splitlines(keepends=True)
    try:
        start = lines.index("image:\n")
    except ValueError:
        raise ToolError("values.yaml has no top-level `image:` block") from None
    seen: set[str] = set()
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if line.strip() and not line.startswith((" ", "#")):
            break  # the next top-level key: the block ended
        match = re.match(r"^  (repository|tag|digest):", line)
        if match:
            key = match.group(1)
            lines[index] = f"  {key}: {_quote(wanted[key])}\n"
            seen.add(key)
    if seen != set(wanted):
        raise ToolError(f"values.yaml's image block lacks {sorted(set(wanted) - seen)}")
    pinned = "".join(lines)
    image = yaml.safe_load(pinned)["image"]
    if {key: image[key] for key in wanted} != wanted:
        raise ToolError(f"pinning values.yaml went wrong: image = {image}")
    return pinned


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def package_release_charts(release: Release, *, digests: Mapping[str, str]) -> list[Path]:
    """Pin and package every chart of :data:`RELEASE_IMAGES`; returns the ``.tgz`` files.

    ``digests`` maps image name (``pinstack``, ``pinstack-operator``) to its ``sha256:`` digest
    in the release's registry.
    """
    for image in RELEASE_IMAGES:  # all of them before any package: never half a release
        check_digest(digests[image.name])
    release.dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pinstack-charts-") as scratch:
        for image in RELEASE_IMAGES:
            copy = Path(scratch, Path(image.chart).name)
            shutil.copytree(release.repo / image.chart, copy)
            values = copy / "values.yaml"
            values.write_text(
                pin_values(
                    values.read_text(),
                    repository=release.image(image.name),
                    tag=release.version,
                    digest=digests[image.name],
                )
            )
            helm_lint(copy)
            run([helm_binary(), "package", copy, "--version", release.version,
                 "--app-version", release.version, "--destination", release.dist])  # fmt: skip
    packages = [release.chart_package(image) for image in RELEASE_IMAGES]
    for package in packages:
        if not package.exists():
            raise ToolError(f"helm package did not write {package}")
    return packages


def push_charts(release: Release) -> list[str]:
    """``helm push`` each package to ``oci://<registry>/charts``; returns what helm reported.

    Credentials come from ``helm registry login`` or Docker's (helm falls back to them; the
    workflow logs in with docker/login-action).
    """
    target = release.charts()
    reports = []
    for package in (release.chart_package(image) for image in RELEASE_IMAGES):
        result = run([helm_binary(), "push", package, target])
        reports.append((result.stdout + result.stderr).strip())
    return reports
