"""A real single-node Kubernetes cluster: etcd, the control plane, containerd, kubelet,
kube-proxy and CoreDNS, all inside one network namespace, started once per machine at a time.

``with Cluster(image_archives=...) as cluster:`` builds (first time) or reuses every binary,
undoes whatever a killed earlier run left behind, starts the cluster, imports the images into the
node's containerd, and waits until the node and cluster DNS are ready. Leaving the block — by
success, failure or Ctrl-C — stops every process and undoes the machine-wide state
(:mod:`.machine`). Clients: :meth:`Cluster.kubectl`, :meth:`Cluster.helm` (processes inside the
namespace) and :attr:`Cluster.netns_thread` (Python clients inside it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

from pinstack_devinfra.cluster import config
from pinstack_devinfra.cluster._log import log, step
from pinstack_devinfra.cluster.binaries import ClusterBinaries, cluster_binaries
from pinstack_devinfra.cluster.coredns import coredns_manifests
from pinstack_devinfra.cluster.machine import MachineState, machine_lock
from pinstack_devinfra.cluster.netns import NetnsThread, NetworkNamespace
from pinstack_devinfra.cluster.prerequisites import ensure_prerequisites
from pinstack_devinfra.gotools import helm_binary

__all__ = ["Cluster", "ClusterError", "unwind_on_signals"]


class ClusterError(RuntimeError):
    """The cluster could not start, or a command against it failed."""


@contextmanager
def unwind_on_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGINT raise :class:`KeyboardInterrupt`, so a terminated run
    (a CI timeout, a kill, a background job whose shell made it ignore SIGINT) leaves through the
    cluster's ``__exit__`` like Ctrl-C. Once: later signals are ignored so they cannot cut that
    teardown short (``uv run`` forwards the one it got)."""

    def interrupt(signum: int, _frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_Part = TypeVar("_Part")


def _running(part: _Part | None) -> _Part:
    """A part that exists only while the cluster runs."""
    if part is None:
        raise ClusterError("the cluster is not running")
    return part


def wait_for(
    what: str, probe: Callable[[], bool], *, timeout: float, interval: float = 0.5
) -> None:
    """Poll ``probe`` until it is true; :class:`ClusterError` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Cluster:
    """The machine's one test cluster (see the module docstring)."""

    image_archives: Sequence[Path] = ()
    layout: config.ClusterLayout = field(default_factory=config.ClusterLayout)
    startup_timeout: float = 300.0
    _stack: ExitStack = field(default_factory=ExitStack)
    _processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _netns_thread: NetnsThread | None = None

    def __post_init__(self) -> None:
        layout = self.layout
        self.netns = NetworkNamespace(
            name=layout.netns,
            bridge=layout.node_bridge,
            node_ip=layout.node_ip,
            service_cidr=layout.service_cidr,
        )
        self.machine = MachineState(
            state_dir=layout.state_dir,
            run_dir=layout.run_dir,
            cgroup_parent=layout.cgroup_parent,
            netns_name=layout.netns,
        )
        self._binaries: ClusterBinaries | None = None
        self._helm: Path | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Cluster:
        self._stack.enter_context(machine_lock())
        try:
            self.start()
        except BaseException:
            self.stop()
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self._stack.close()

    @contextmanager
    def attached(self) -> Iterator[Cluster]:
        """Use the cluster another process started (``python -m pinstack_devinfra.cluster up``)
        without starting or stopping anything: for iterating on tests against a live cluster."""
        if not self.netns.exists() or not self.kubeconfig.exists():
            raise ClusterError("no running cluster to attach to: start one with `... cluster up`")
        self._binaries = cluster_binaries()
        self._helm = helm_binary()
        self._netns_thread = NetnsThread(self.netns)
        try:
            yield self
        finally:
            self._netns_thread.close()
            self._netns_thread = None

    def start(self) -> None:
        ensure_prerequisites()
        self._binaries = binaries = cluster_binaries()
        self._helm = helm_binary()
        with step("clearing what an earlier run may have left"):
            self.machine.restore()
        self.machine.record()
        self.machine.create_cgroup_parent()
        started = time.monotonic()
        config.write_files(self.layout)
        self.netns.create()
        self._start_containerd()
        self._import_images()
        self._start_control_plane(binaries)
        self._start_node(binaries)
        self._netns_thread = NetnsThread(self.netns)
        self._start_dns()
        log(f"cluster ready in {time.monotonic() - started:.0f}s")

    def stop(self) -> None:
        with step("stopping the cluster and restoring the machine"):
            if self._netns_thread is not None:
                self._netns_thread.close()
                self._netns_thread = None
            # kubelet first (it would restart containers), the API server last but one.
            for name, process in reversed(self._processes):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                log(f"  stopped {name}")
            self._processes.clear()
            self.machine.restore()

    # ------------------------------------------------------------------ clients

    @property
    def kubeconfig(self) -> Path:
        return self.layout.admin_kubeconfig

    @property
    def netns_thread(self) -> NetnsThread:
        return _running(self._netns_thread)

    @property
    def kubectl_path(self) -> Path:
        return _running(self._binaries)["kubectl"]

    @property
    def helm_path(self) -> Path:
        return _running(self._helm)

    @property
    def helm_env(self) -> dict[str, str]:
        """Helm's own directories under the run's state (not the user's ~/.config/helm)."""
        base = self.layout.state_dir / "helm"
        return {"HELM_CACHE_HOME": str(base / "cache"), "HELM_CONFIG_HOME": str(base / "config"),
                "HELM_DATA_HOME": str(base / "data")}  # fmt: skip

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> str:
        """Run kubectl inside the namespace as the cluster admin; its stdout."""
        return self._client(
            [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args],
            stdin=stdin, check=check, timeout=timeout,
        )  # fmt: skip

    def helm(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        """Run helm inside the namespace as the cluster admin; its stdout."""
        return self._client(
            [str(self.helm_path), f"--kubeconfig={self.kubeconfig}", *args],
            stdin=None, check=check, timeout=timeout,
        )  # fmt: skip

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def apply(self, documents: Sequence[dict[str, Any]], *, server_side: bool = False) -> str:
        extra = ["--server-side", "--force-conflicts"] if server_side else []
        return self.kubectl("apply", *extra, "-f", "-", stdin=yaml.safe_dump_all(documents))

    def _client(self, args: list[str], *, stdin: str | None, check: bool, timeout: float) -> str:
        env = {**os.environ, **self.helm_env}
        result = subprocess.run(  # noqa: S603 - our binaries
            self.netns.command(args), input=stdin, capture_output=True, text=True,
            timeout=timeout, check=False, env=env,
        )  # fmt: skip
        if check and result.returncode != 0:
            shown = " ".join(args[2:])[:300]
            raise ClusterError(f"{Path(args[0]).name} {shown} failed:\n{result.stderr[-4000:]}")
        return result.stdout

    def component_log(self, name: str) -> str:
        """The last part of a cluster component's log (for failure messages)."""
        path = self.layout.logs / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    # ------------------------------------------------------------------ start steps

    def _spawn(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        log_file = self.layout.logs / f"{name}.log"
        with log_file.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our binaries
                self.netns.command(args), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._processes.append((name, process))
        return process

    def _alive(self, name: str) -> None:
        for own, process in self._processes:
            if own == name and process.poll() is not None:
                raise ClusterError(
                    f"{name} exited with {process.returncode}:\n{self.component_log(name)}"
                )

    def _start_containerd(self) -> None:
        layout = self.layout
        with step("starting containerd"):
            self._spawn(
                "containerd", ["containerd", f"--config={layout.state_dir / 'containerd.toml'}"]
            )
            wait_for("containerd's socket", lambda: self._ctr("version", check=False) == 0,
                     timeout=60)  # fmt: skip

    def _ctr(self, *args: str, check: bool = True) -> int:
        command = ["ctr", f"--address={self.layout.containerd_socket}", "--namespace=k8s.io"]
        result = subprocess.run(  # noqa: S603 - Debian's ctr
            [*command, *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.returncode

    def _import_images(self) -> None:
        for archive in self.image_archives:
            self.import_image_archive(archive)

    def import_image_archive(self, archive: Path) -> None:
        """Put the images of a docker-archive into the node's containerd (pods use them as is)."""
        with step(f"importing {archive.name} into the node's containerd"):
            self._ctr("images", "import", str(archive))

    def _start_control_plane(self, binaries: ClusterBinaries) -> None:
        layout, pki, state = self.layout, self.layout.pki, self.layout.state_dir
        with step("starting etcd and kube-apiserver"):
            self._spawn("etcd", [
                str(binaries.etcd), f"--data-dir={state / 'etcd'}",
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=default=http://127.0.0.1:2380",
                "--unsafe-no-fsync=true", "--quota-backend-bytes=2147483648",
            ])  # fmt: skip
            self._spawn("kube-apiserver", [
                str(binaries["kube-apiserver"]),
                "--etcd-servers=http://127.0.0.1:2379",
                f"--advertise-address={layout.node_ip}", "--bind-address=0.0.0.0",
                "--secure-port=6443", f"--service-cluster-ip-range={layout.service_cidr}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true", "--profiling=false", f"--cert-dir={pki}",
            ])  # fmt: skip

            def apiserver_ready() -> bool:
                self._alive("etcd")
                self._alive("kube-apiserver")
                return self.kubectl("get", "--raw=/readyz", check=False, timeout=10) == "ok"

            wait_for("kube-apiserver /readyz", apiserver_ready, timeout=self.startup_timeout)
        with step("starting kube-controller-manager and kube-scheduler"):
            self._spawn("kube-controller-manager", [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={state / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={state / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={state / 'controller-manager.kubeconfig'}",
                "--controllers=*,-nodeipam", "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={layout.service_cidr}",
                "--bind-address=127.0.0.1", "--profiling=false",
            ])  # fmt: skip
            self._spawn("kube-scheduler", [
                str(binaries["kube-scheduler"]),
                f"--kubeconfig={state / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={state / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={state / 'scheduler.kubeconfig'}",
                "--leader-elect=false", "--bind-address=127.0.0.1", "--profiling=false",
            ])  # fmt: skip

    def _start_node(self, binaries: ClusterBinaries) -> None:
        layout, state = self.layout, self.layout.state_dir
        with step("starting kubelet and kube-proxy; waiting for the node to be Ready"):
            self._spawn("kubelet", [
                str(binaries["kubelet"]), f"--config={state / 'kubelet.yaml'}",
                f"--kubeconfig={state / 'kubelet.kubeconfig'}",
                f"--root-dir={state / 'kubelet'}", f"--cert-dir={layout.pki}",
                f"--hostname-override={layout.node_name}", f"--node-ip={layout.node_ip}",
                "--v=1",
            ])  # fmt: skip
            self._spawn("kube-proxy", [
                str(binaries["kube-proxy"]), f"--config={state / 'kube-proxy.yaml'}",
            ])  # fmt: skip

            def node_ready() -> bool:
                for name in ("kubelet", "kube-proxy", "kube-controller-manager", "containerd"):
                    self._alive(name)
                out = self.kubectl("get", "node", layout.node_name, "-o",
                                   "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                                   check=False, timeout=10)  # fmt: skip
                return out == "True"

            wait_for("the node to be Ready", node_ready, timeout=self.startup_timeout)

    def _start_dns(self) -> None:
        with step("starting CoreDNS"):
            self.apply(coredns_manifests(self.layout))
            self.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns",
                         f"--timeout={self.startup_timeout:.0f}s",
                         timeout=self.startup_timeout + 10)  # fmt: skip
