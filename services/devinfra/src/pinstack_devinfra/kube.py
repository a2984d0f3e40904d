"""A real kube-apiserver + etcd built from the Go module proxy, run as envtest runs them.

``KubeApiServer(workdir=...)`` is a context manager: it builds (first time, minutes) or reuses the
cached binaries, generates a CA, serving and client certificates and a service-account key,
starts etcd and kube-apiserver on free loopback ports, waits for ``/readyz`` and writes a
kubeconfig (``.kubeconfig_path``) for an admin user (``system:masters``).

A bare apiserver runs no controllers: no garbage collection, no Job → Pod, no namespace
finalisation. Tests patch child status themselves.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pinstack_devinfra.cache import cache_dir
from pinstack_devinfra.gotools import build_wrapper_binaries, build_wrapper_binary, go_mod_replaces
from pinstack_devinfra.pki import CertificateAuthority, write_rsa_key_pair
from pinstack_devinfra.ports import free_port

__all__ = [
    "ETCD_VERSION",
    "KUBERNETES_COMMANDS",
    "KUBERNETES_VERSION",
    "KubeApiServer",
    "etcd_binary",
    "kube_apiserver_binary",
    "kubernetes_binaries",
]

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.5"

_ETCD_MAIN = """package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
\tetcdmain.Main(os.Args)
}
"""


KUBERNETES_COMMANDS = (
    "kubelet",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubectl",
)


def kubernetes_binaries(version: str = KUBERNETES_VERSION) -> dict[str, Path]:
    """Every Kubernetes command at ``version`` (see ``KUBERNETES_COMMANDS``), built once.

    One wrapper module requires ``k8s.io/kubernetes`` and replaces its local staging modules with
    their published ``v0.x`` versions; the commands share one Go build cache, so after the first
    (kubelet, which compiles most of k8s.io) each takes seconds to a few minutes.
    """
    group = f"kubernetes-{version}"
    cached = {name: cache_dir("bin", group) / name for name in KUBERNETES_COMMANDS}
    if all(path.exists() for path in cached.values()):
        return cached
    major, minor, patch = version.removeprefix("v").split(".")
    staging_version = f"v0.{minor}.{patch}"
    replaces = {
        module: staging_version
        for module in go_mod_replaces("k8s.io/kubernetes", version)
        if module.startswith("k8s.io/")
    }
    base = "k8s.io/component-base/version"
    ldflags = [
        f"-X {base}.gitVersion={version}",
        f"-X {base}.gitMajor={major}",
        f"-X {base}.gitMinor={minor}",
        f"-X {base}.gitTreeState=clean",
        "-s",
        "-w",
    ]
    packages = {name: f"k8s.io/kubernetes/cmd/{name}" for name in KUBERNETES_COMMANDS}
    return build_wrapper_binaries(
        group=group,
        requires={"k8s.io/kubernetes": version},
        packages=packages,
        replaces=replaces,
        ldflags=ldflags,
    )


def kube_apiserver_binary(version: str = KUBERNETES_VERSION) -> Path:
    """``kube-apiserver`` at ``version`` (built with the other Kubernetes commands, cached)."""
    return kubernetes_binaries(version)["kube-apiserver"]


def etcd_binary(version: str = ETCD_VERSION) -> Path:
    """``etcd`` at ``version`` (its server module's ``etcdmain``), built and cached."""
    return build_wrapper_binary(
        name="etcd",
        version=version,
        requires={"go.etcd.io/etcd/server/v3": version},
        package="go.etcd.io/etcd/server/v3/etcdmain",
        main_go=_ETCD_MAIN,
        ldflags=["-s", "-w"],
    )


@dataclass(frozen=True)
class CertBundle:
    """PEM files for the test control plane."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    client_cert: Path
    client_key: Path
    sa_public_key: Path
    sa_private_key: Path


def generate_cert_bundle(directory: Path) -> CertBundle:
    """A CA, a serving certificate for 127.0.0.1/localhost, an admin client certificate
    (``system:masters``) and an RSA service-account key pair, written into ``directory``."""
    ca = CertificateAuthority(directory)
    serving_cert, serving_key = ca.issue(
        "apiserver",
        common_name="kube-apiserver",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1", "10.0.0.1"),
        server=True,
    )
    client_cert, client_key = ca.issue(
        "admin", common_name="pinstack-admin", organization="system:masters", client=True
    )
    sa_public, sa_private = write_rsa_key_pair(directory, "sa")
    return CertBundle(
        ca_cert=ca.cert_path,
        serving_cert=serving_cert,
        serving_key=serving_key,
        client_cert=client_cert,
        client_key=client_key,
        sa_public_key=sa_public,
        sa_private_key=sa_private,
    )


@dataclass
class KubeApiServer:
    """etcd + kube-apiserver in ``workdir``; ``kubeconfig_path`` once started."""

    workdir: Path
    startup_timeout: float = 120.0
    extra_args: tuple[str, ...] = ()
    etcd_port: int = 0
    secure_port: int = 0
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _certs: CertBundle | None = None

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "kubeconfig.yaml"

    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self.secure_port}"

    def start(self) -> None:
        apiserver = kube_apiserver_binary()
        etcd = etcd_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._certs = certs = generate_cert_bundle(self.workdir / "pki")
        self.etcd_port = free_port()
        peer_port = free_port()
        self.secure_port = free_port()
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self._spawn(
            "etcd",
            [
                str(etcd),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=2147483648",
            ],
        )
        self._wait_http(f"{etcd_url}/health", "etcd", ssl_context=None)
        self._spawn(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={self.workdir / 'pki'}",
                f"--tls-cert-file={certs.serving_cert}",
                f"--tls-private-key-file={certs.serving_key}",
                f"--client-ca-file={certs.ca_cert}",
                f"--secure-port={self.secure_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.server_url}",
                f"--service-account-key-file={certs.sa_public_key}",
                f"--service-account-signing-key-file={certs.sa_private_key}",
                "--endpoint-reconciler-type=none",
                *self.extra_args,
            ],
        )
        context = ssl.create_default_context(cafile=str(certs.ca_cert))
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        self._wait_http(f"{self.server_url}/readyz", "kube-apiserver", ssl_context=context)
        self._write_kubeconfig(certs)

    def _spawn(self, name: str, args: list[str]) -> None:
        # The child keeps its own copy of the descriptor; ours is closed once it has started.
        with (self.workdir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - a cached binary and our own flags, no shell
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._processes.append(process)

    def _wait_http(self, url: str, what: str, *, ssl_context: ssl.SSLContext | None) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"{what} exited with {process.returncode}; see {self.workdir}/*.log:\n"
                        + self._log_tail(what)
                    )
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own loopback URL, never file:
                    url, timeout=5, context=ssl_context
                ) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last_error = str(error)
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{what} not ready within {self.startup_timeout}s: {last_error}")

    def _log_tail(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _write_kubeconfig(self, certs: CertBundle) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "pinstack-test",
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority": str(certs.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(certs.client_cert),
                        "client-key": str(certs.client_key),
                    },
                }
            ],
            "contexts": [
                {"name": "pinstack-test", "context": {"cluster": "pinstack-test", "user": "admin"}}
            ],
            "current-context": "pinstack-test",
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(config))
        os.chmod(self.kubeconfig_path, 0o600)

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python -m pinstack_devinfra.kube``: build the binaries (warm the cache) and print paths."""
    sys.stdout.write(f"{etcd_binary()}\n")
    sys.stdout.write(f"{kube_apiserver_binary()}\n")


if __name__ == "__main__":
    main()
