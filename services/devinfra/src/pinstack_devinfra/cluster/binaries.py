"""The cluster's programs: Kubernetes, etcd, CoreDNS and a pause program, built and cached.

Kubernetes and etcd come from :mod:`pinstack_devinfra.kube` (the same builds the bare-apiserver
tier uses); CoreDNS is ``go install``-ed; the pause container is a 20-line Go program of our own
(wait for a signal, reap children), because ``registry.k8s.io/pause`` cannot be pulled here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pinstack_devinfra.gotools import (
    build_wrapper_binaries,
    build_wrapper_binary,
    go_install_binary,
)
from pinstack_devinfra.kube import etcd_binary, kubernetes_binaries

__all__ = [
    "COREDNS_VERSION",
    "PROMETHEUS_OPERATOR_VERSION",
    "PROMETHEUS_VERSION",
    "ClusterBinaries",
    "cluster_binaries",
    "prometheus_binary",
    "prometheus_operator_binaries",
]

COREDNS_VERSION = "v1.12.4"
# The newest root module the proxy serves here (its API submodules go further).
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
_PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator"
# The Prometheus the operator's version is built against (its go.mod): 3.5.0's module version.
PROMETHEUS_MODULE_VERSION = "v0.305.0"
PROMETHEUS_VERSION = "v3.5.0"

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
    prometheus_operator: dict[str, Path]

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


def prometheus_operator_binaries(version: str = PROMETHEUS_OPERATOR_VERSION) -> dict[str, Path]:
    """The Prometheus Operator and its config reloader (``operator``, ``config-reloader``).

    Its go.mod replaces its two API submodules with local paths, so ``go install`` refuses it:
    a wrapper module pins them to the same published version instead.
    """
    apis = [f"{_PROMETHEUS_OPERATOR}/pkg/apis/monitoring", f"{_PROMETHEUS_OPERATOR}/pkg/client"]
    return build_wrapper_binaries(
        group=f"prometheus-operator-{version}",
        requires={_PROMETHEUS_OPERATOR: version, **dict.fromkeys(apis, version)},
        replaces=dict.fromkeys(apis, version),
        packages={
            "operator": f"{_PROMETHEUS_OPERATOR}/cmd/operator",
            "config-reloader": f"{_PROMETHEUS_OPERATOR}/cmd/prometheus-config-reloader",
        },
        ldflags=["-s", "-w", f"-X github.com/prometheus/common/version.Version={version[1:]}"],
    )


def prometheus_binary(version: str = PROMETHEUS_MODULE_VERSION) -> Path:
    """Prometheus itself. Not Debian's package: Debian builds it without Kubernetes service
    discovery (``kubernetes_sd_configs`` is an unknown field there), which every ServiceMonitor
    needs. Its go.mod pins fsnotify with a ``replace``, so it goes through a wrapper module too.
    """
    return build_wrapper_binary(
        name="prometheus",
        version=version,
        requires={"github.com/prometheus/prometheus": version},
        replaces={"github.com/fsnotify/fsnotify": "v1.7.0"},
        package="github.com/prometheus/prometheus/cmd/prometheus",
        ldflags=[
            "-s",
            "-w",
            f"-X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION[1:]}",
        ],
    )


def cluster_binaries() -> ClusterBinaries:
    """Build (the first time, ~25 min on 2 cores) or reuse every program the cluster needs."""
    return ClusterBinaries(
        kubernetes=kubernetes_binaries(),
        etcd=etcd_binary(),
        coredns=coredns_binary(),
        pause=pause_binary(),
        prometheus_operator={
            **prometheus_operator_binaries(),
            "prometheus": prometheus_binary(),
        },
    )
