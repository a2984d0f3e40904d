"""A real kube-apiserver + etcd built from the Go module proxy, run as envtest runs them.

``KubeApiServer(workdir=...)`` is a context manager: it builds (first time, minutes) or reuses the
cached binaries, generates a CA, serving and client certificates and a service-account key,
starts etcd and kube-apiserver on free loopback ports, waits for ``/readyz`` and writes a
kubeconfig (``.kubeconfig_path``) for an admin user (``system:masters``).

A bare apiserver runs no controllers: no garbage collection, no Job → Pod, no namespace
finalisation. Tests patch child status themselves.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pinstack_devinfra.cache import cache_dir
from pinstack_devinfra.gotools import build_wrapper_binary, go_mod_replaces

__all__ = [
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "KubeApiServer",
    "etcd_binary",
    "kube_apiserver_binary",
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


def kube_apiserver_binary(version: str = KUBERNETES_VERSION) -> Path:
    """``kube-apiserver`` at ``version``, built through a wrapper module and cached."""
    cached = cache_dir("bin", f"kube-apiserver-{version}") / "kube-apiserver"
    if cached.exists():
        return cached
    major, minor, _patch = version.removeprefix("v").split(".")
    staging_version = f"v0.{minor}.{_patch}"
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
    return build_wrapper_binary(
        name="kube-apiserver",
        version=version,
        requires={"k8s.io/kubernetes": version},
        replaces=replaces,
        package="k8s.io/kubernetes/cmd/kube-apiserver",
        ldflags=ldflags,
    )


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


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_cert_bundle(directory: Path) -> CertBundle:
    """A CA, a serving certificate for 127.0.0.1/localhost, an admin client certificate
    (``system:masters``) and an RSA service-account key pair, written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=7)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("pinstack-test-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip

    def leaf(
        subject: x509.Name, usage: x509.ObjectIdentifier, san: x509.SubjectAlternativeName | None
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            x509.IPAddress(ipaddress.IPv4Address("10.0.0.1")),
        ]
    )
    serving = leaf(_name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, san)
    client = leaf(_name("pinstack-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, None)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "apiserver.crt": serving[0],
        "apiserver.key": serving[1],
        "admin.crt": client[0],
        "admin.key": client[1],
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "sa.key": _key_pem(sa_key),
    }
    for filename, content in files.items():
        path = directory / filename
        path.write_bytes(content)
        path.chmod(0o600)
    return CertBundle(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        client_cert=directory / "admin.crt",
        client_key=directory / "admin.key",
        sa_public_key=directory / "sa.pub",
        sa_private_key=directory / "sa.key",
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        self.etcd_port = _free_port()
        peer_port = _free_port()
        self.secure_port = _free_port()
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
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603
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
                with urllib.request.urlopen(url, timeout=5, context=ssl_context) as response:  # noqa: S310
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    """``python -m pinstack_devinfra.kube``: build the binaries (warm the cache) and print paths."""
    sys.stdout.write(f"{etcd_binary()}\n")
    sys.stdout.write(f"{kube_apiserver_binary()}\n")


if __name__ == "__main__":
    main()
