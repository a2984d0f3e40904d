"""The cluster's programs: Kubernetes, etcd, CoreDNS and a pause program, built and cached.

Kubernetes and etcd come from :mod:`pinstack_devinfra.kube` (the same builds the bare-apiserver
tier uses); CoreDNS is ``go install``-ed; the pause container is a 20-line Go program of our own
(wait for a signal, reap children), because ``registry.k8s.io/pause`` cannot be pulled here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pinstack_devinfra.gotools import build_wrapper_binaries, go_install_binary
from pinstack_devinfra.kube import etcd_binary, kubernetes_binaries

__all__ = ["COREDNS_VERSION", "ClusterBinaries", "cluster_binaries"]

COREDNS_VERSION = "v1.12.4"

_PAUSE_MAIN = """package main

// The pod sandbox's first process: hold the namespaces, reap orphans, exit on a signal.

import (
\t"os"
\t"os/signal"
\t"syscall"
)

func main() {
\tstop := make(chan os.Signal, 1)
\tsignal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
\tchildren := make(chan os.Signal, 16)
\tsignal.Notify(children, syscall.SIGCHLD)
\tfor {
\t\tselect {
\t\tcase <-stop:
\t\t\tos.Exit(0)
\t\tcase <-children:
\t\t\tfor {
\t\t\t\tvar status syscall.WaitStatus
\t\t\t\tpid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
\t\t\t\tif pid <= 0 || err != nil {
\t\t\t\t\tbreak
\t\t\t\t}
\t\t\t}
\t\t}
\t}
}
"""


@dataclass(frozen=True)
class ClusterBinaries:
    """Paths of every program the cluster runs on the host or packs into an image."""

    kubernetes: dict[str, Path]
    etcd: Path
    coredns: Path
    pause: Path

    def __getitem__(self, name: str) -> Path:
        return self.kubernetes[name]


def pause_binary() -> Path:
    """The pause program (static, seconds to build)."""
    return build_wrapper_binaries(
        group="pause-1",
        requires={},
        packages={"pause": "."},
        main_go=_PAUSE_MAIN,
        ldflags=["-s", "-w"],
    )["pause"]


def coredns_binary(version: str = COREDNS_VERSION) -> Path:
    """CoreDNS (the cluster DNS), ``go install``-ed once and cached."""
    return go_install_binary("github.com/coredns/coredns", version, "coredns")


def cluster_binaries() -> ClusterBinaries:
    """Build (the first time, ~25 min on 2 cores) or reuse every program the cluster needs."""
    return ClusterBinaries(
        kubernetes=kubernetes_binaries(),
        etcd=etcd_binary(),
        coredns=coredns_binary(),
        pause=pause_binary(),
    )
