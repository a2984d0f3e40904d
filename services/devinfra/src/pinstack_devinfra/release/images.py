"""The project's two images: built locally (``make images``) or released (``make release-images``).

Two builders on purpose, one per job:

- locally, podman through the cluster tier's :class:`ImageBuilder` — no Docker daemon, no
  registry, the Dockerfiles' bases made from Debian and PyPI — so ``make images`` works wherever
  the cluster tier does and builds the very images it runs;
- for a release, ``docker buildx`` on CI, FROM the real upstream bases, for linux/amd64 and
  linux/arm64 (QEMU), pushed and then signed keyless by digest with cosign; the same build
  without pushing runs on every push (``make release-images-check``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from pinstack_devinfra.cluster.images import ImageBuilder
from pinstack_devinfra.commands import ToolError, log, run
from pinstack_devinfra.release.charts import RELEASE_IMAGES, Release, check_digest

__all__ = [
    "PLATFORMS",
    "build_local_images",
    "check_release_images",
    "publish_images",
    "write_digests",
]

PLATFORMS = ("linux/amd64", "linux/arm64")


def build_local_images(*, repo: Path, tag: str, archive: Path) -> list[str]:
    """Build both images with podman and save them as one docker-archive at ``archive``.

    The archive loads with ``docker load -i``, ``podman load -i``, ``kind load image-archive``
    or ``ctr images import``. Returns the image names.
    """
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        raise ToolError(
            "debootstrap is required to make the base image: apt-get install debootstrap"
        )
    builder = ImageBuilder(repo=repo)
    names = list(builder.build_project_images(tag=tag))
    archive.parent.mkdir(parents=True, exist_ok=True)
    builder.save(names, archive)
    for name in names:
        image_id = builder.podman("image", "inspect", "--format", "{{.Id}}", name, quiet=True)
        log(f"built {name} (id sha256:{image_id.strip()[:12]})")
    return names


def _buildx(*, repo: Path, dockerfile: str, reference: str, output: Sequence[str]) -> None:
    docker = shutil.which("docker")
    if docker is None:
        raise ToolError("docker with the buildx plugin is required to build release images")
    run([docker, "buildx", "build", "--platform", ",".join(PLATFORMS),
         "--file", repo / dockerfile, "--target", "runtime", "--tag", reference,
         *output, repo])  # fmt: skip


def check_release_images(release: Release) -> None:
    """Build both images for every platform and keep only the build cache (CI, every push):
    what a tag will publish is proven buildable — arm64 included — before anyone tags."""
    for image in RELEASE_IMAGES:
        reference = f"{release.image(image.name)}:{release.version}"
        _buildx(repo=release.repo, dockerfile=image.dockerfile, reference=reference,
                output=["--output", "type=cacheonly"])  # fmt: skip
        log(f"built {reference} for {', '.join(PLATFORMS)} (not pushed)")


def publish_images(release: Release) -> dict[str, str]:
    """Build, push and cosign-sign both images; returns name -> digest.

    Signing is keyless: cosign gets an identity token from the CI's OIDC provider (GitHub
    Actions with ``id-token: write``) and records the signature in the public transparency log.
    The signature is made on the digest, never on the tag (a tag can be moved).
    """
    cosign = shutil.which("cosign")
    if cosign is None:
        raise ToolError("cosign is required to sign release images")
    release.dist.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    for image in RELEASE_IMAGES:
        repository = release.image(image.name)
        metadata = release.dist / f"{image.name}.metadata.json"
        _buildx(repo=release.repo, dockerfile=image.dockerfile,
                reference=f"{repository}:{release.version}",
                output=["--push", "--metadata-file", str(metadata)])  # fmt: skip
        # The pushed manifest list's digest (one per image, covering both platforms).
        digest = check_digest(json.loads(metadata.read_text())["containerimage.digest"])
        log(f"pushed {repository}:{release.version} as {digest}")
        run([cosign, "sign", "--yes", f"{repository}@{digest}"])
        log(f"signed {repository}@{digest}")
        digests[image.name] = digest
    return digests


def write_digests(digests: dict[str, str], path: Path) -> Path:
    """``APP_DIGEST=...`` / ``OPERATOR_DIGEST=...`` lines: what ``make chart-release`` takes."""
    variables = {"pinstack": "APP_DIGEST", "pinstack-operator": "OPERATOR_DIGEST"}
    path.write_text("".join(f"{variables[name]}={d}\n" for name, d in digests.items()))
    return path
