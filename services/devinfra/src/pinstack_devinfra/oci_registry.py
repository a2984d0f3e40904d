"""An OCI registry on loopback (CNCF Distribution, built from the Go module proxy), over TLS.

It stands in for ghcr.io in tests of the release path: charts are pushed to it with ``helm
push`` and pulled back as a user would. TLS with a throwaway CA (not plain HTTP) keeps helm's
commands exactly the ones the release workflow and the docs run; Go programs such as helm trust
the CA through ``SSL_CERT_FILE`` (:attr:`OciRegistry.ca_file`).
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from pinstack_devinfra.commands import ToolError
from pinstack_devinfra.gotools import go_install_binary
from pinstack_devinfra.pki import CertificateAuthority
from pinstack_devinfra.ports import free_port
from pinstack_devinfra.procs import stop_processes

__all__ = ["DISTRIBUTION_VERSION", "OciRegistry", "registry_binary"]

DISTRIBUTION_VERSION = "v3.0.0"


def registry_binary(version: str = DISTRIBUTION_VERSION) -> Path:
    return go_install_binary(
        "github.com/distribution/distribution/v3/cmd/registry", version, "registry"
    )


class OciRegistry:
    """``with OciRegistry(workdir=...) as registry:`` serves ``registry.address`` until exit."""

    def __init__(self, *, workdir: Path, startup_timeout: float = 60.0) -> None:
        self.workdir = workdir
        self.startup_timeout = startup_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.ca_file = workdir / "pki" / "ca.crt"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> OciRegistry:
        binary = registry_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        authority = CertificateAuthority(self.workdir / "pki", common_name="pinstack-registry-ca")
        cert, key = authority.issue(
            "registry", common_name="registry", ip_addresses=("127.0.0.1",), server=True
        )
        self.port = free_port()
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "data")}},
            "http": {"addr": self.address, "tls": {"certificate": str(cert), "key": str(key)}},
        }
        config_file = self.workdir / "config.yml"
        config_file.write_text(yaml.safe_dump(config))
        with (self.workdir / "registry.log").open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - a cached binary, our own config
                [str(binary), "serve", str(config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(ssl.create_default_context(cafile=str(authority.cert_path)))
        return self

    def _wait_ready(self, context: ssl.SSLContext) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                log = (self.workdir / "registry.log").read_text(errors="replace")[-3000:]
                raise ToolError(f"the registry exited with {self._process.returncode}:\n{log}")
            try:
                url = f"https://{self.address}/v2/"
                with urllib.request.urlopen(url, timeout=5, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last_error = str(error)
            time.sleep(0.2)
        self.stop()
        raise ToolError(f"the registry was not ready within {self.startup_timeout}s: {last_error}")

    def stop(self) -> None:
        if self._process is not None:
            stop_processes([self._process.pid], signals=(signal.SIGTERM, signal.SIGKILL))
            self._process.wait()
            self._process = None

    def __exit__(self, *exc: object) -> None:
        self.stop()
