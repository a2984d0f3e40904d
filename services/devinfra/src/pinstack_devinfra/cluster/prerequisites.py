"""What the machine must have to run the cluster tier; installed from Debian when missing.

The tier needs root (network namespaces, cgroups, mounts), cgroups (v1 controllers or v2), and
Debian's containerd, runc, CNI plugins, podman, debootstrap, iptables and conntrack. A fresh CI
machine has none of the packages: they are installed here (``apt-get``), not skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pinstack_devinfra.cluster._log import step

__all__ = ["PrerequisiteError", "ensure_prerequisites"]

# Debian package -> a file that proves it is installed.
_PACKAGES = {
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "podman": "/usr/bin/podman",
    "debootstrap": "/usr/sbin/debootstrap",
    "iptables": "/usr/sbin/iptables",
    "conntrack": "/usr/sbin/conntrack",
    "iproute2": "/usr/sbin/ip",
    "util-linux": "/usr/bin/nsenter",
}


class PrerequisiteError(RuntimeError):
    """The machine cannot run the cluster tier; the message says what is missing."""


def ensure_prerequisites() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "the cluster tier needs root (network namespaces, cgroups, mounts, containerd); "
            "run `make test-py` for the tiers that don't"
        )
    if not Path("/sys/fs/cgroup").is_dir() or not any(Path("/sys/fs/cgroup").iterdir()):
        raise PrerequisiteError("the cluster tier needs cgroups mounted under /sys/fs/cgroup")
    missing = [package for package, proof in _PACKAGES.items() if not Path(proof).exists()]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise PrerequisiteError(f"install these packages first: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with step(f"installing {', '.join(missing)} from Debian"):
        subprocess.run(  # noqa: S603 - apt-get from PATH and fixed arguments, no shell
            [apt, "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL
        )
        subprocess.run(  # noqa: S603 - apt-get and our own package names, no shell
            [apt, "install", "-y", "-q", "--no-install-recommends", *missing],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
