"""A base root filesystem for images, made by debootstrap (no registry, no base image pulled).

``python:3.11-slim-bookworm`` cannot be pulled here; Debian bookworm's minbase with python3 and
the machine's CA bundle stands in for it (Python 3.11 either way). The result is a tarball cached
under ``cache_dir("images")``; a half-made one is never left under the final name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from pinstack_devinfra.cache import cache_dir
from pinstack_devinfra.cluster._log import step

__all__ = ["DEBIAN_SUITE", "base_rootfs_tarball"]

DEBIAN_SUITE = "bookworm"
_PACKAGES = ("python3", "ca-certificates")
_DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The machine's trust store: egress TLS may be intercepted by a proxy with a CA of its own, and
# image builds (uv sync) must trust what the machine trusts.
_HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _apt_mirror() -> str:
    """``PINSTACK_DEBIAN_MIRROR``, else the Debian mirror apt is configured with, else the default.

    Only a URI ending in ``/debian`` counts: other sources (security, nodesource, ...) are not
    full Debian archives.
    """
    if override := os.environ.get("PINSTACK_DEBIAN_MIRROR"):
        return override
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in candidates:
        if not source.is_file():
            continue
        for raw in source.read_text(errors="replace").splitlines():
            words = [w for w in raw.split() if not w.startswith("[")]
            if len(words) >= 2 and words[0] in {"URIs:", "deb"}:
                uri = words[1].rstrip("/")
                if uri.endswith("/debian"):
                    return uri
    return _DEFAULT_MIRROR


def base_rootfs_tarball() -> Path:
    """``images/rootfs-<suite>.tar``: debootstrap minbase + python3 + CA bundle (~6 min once)."""
    images = cache_dir("images")
    tarball = images / f"rootfs-{DEBIAN_SUITE}.tar"
    if tarball.exists():
        return tarball
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    work = images / f".rootfs-{DEBIAN_SUITE}"
    shutil.rmtree(work, ignore_errors=True)
    with step(f"debootstrap {DEBIAN_SUITE} (minbase, {', '.join(_PACKAGES)})"):
        subprocess.run(  # noqa: S603 - debootstrap and our own arguments, no shell
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(_PACKAGES)}",
                DEBIAN_SUITE,
                str(work),
                _apt_mirror(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if _HOST_CA_BUNDLE.exists():
        shutil.copyfile(_HOST_CA_BUNDLE, work / "etc/ssl/certs/ca-certificates.crt")
    # Leave apt usable in image builds but drop the downloaded .debs.
    shutil.rmtree(work / "var/cache/apt/archives", ignore_errors=True)
    (work / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    partial = images / f".rootfs-{DEBIAN_SUITE}.tar.partial"
    with step("packing the base root filesystem"), tarfile.open(partial, "w") as tar:
        for entry in sorted(os.listdir(work)):
            tar.add(work / entry, arcname=entry)
    os.replace(partial, tarball)
    shutil.rmtree(work, ignore_errors=True)
    return tarball
