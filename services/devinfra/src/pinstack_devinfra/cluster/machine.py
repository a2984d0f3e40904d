"""Machine-wide state the cluster touches, and how it is put back.

Even inside its own network namespace a cluster leaves traces outside it: cgroups under the
kubelet's cgroup root, mounts under its state directories (secrets, overlay snapshots, pod network
namespaces), sysctls the kubelet sets, CNI's cache, and processes (containerd shims, container
processes) that outlive their parents. :class:`MachineState` records what was there before, and
:meth:`MachineState.restore` undoes the rest; a start first runs it too, to clear what a killed
run left behind. One cluster per machine at a time: :func:`machine_lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pinstack_devinfra.cluster._log import log

__all__ = ["KUBELET_SYSCTLS", "MachineState", "machine_lock"]

KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_LOCK_FILE = Path("/run/pinstack-cluster.lock")


@contextlib.contextmanager
def machine_lock(*, timeout: float = 3600) -> Iterator[None]:
    """Hold the machine's one cluster lock (another run waits, saying so)."""
    with _LOCK_FILE.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another cluster run holds {_LOCK_FILE}; waiting (up to {timeout:.0f}s)")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the cluster lock was not released") from None
                    time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


class MachineState:
    """What one cluster run may leave behind, keyed by its own directories and names."""

    def __init__(
        self, *, state_dir: Path, run_dir: Path, cgroup_parent: str, netns_name: str
    ) -> None:
        self.state_dir = state_dir
        self.run_dir = run_dir
        self.cgroup_parent = cgroup_parent
        self.netns_name = netns_name
        self._record = state_dir.parent / f"{state_dir.name}.restore.json"

    # ------------------------------------------------------------------ record

    def record(self) -> None:
        """Save the values restore() must put back (only if no earlier run's record is pending)."""
        if self._record.exists():
            return
        saved = {key: _sysctl_path(key).read_text().strip() for key in KUBELET_SYSCTLS}
        cni = Path("/var/lib/cni")
        payload = {"sysctls": saved, "cni_dir_existed": cni.exists(), "netns": self._netns()}
        self._record.write_text(json.dumps(payload))

    @staticmethod
    def _netns() -> list[str]:
        directory = Path("/run/netns")
        return sorted(p.name for p in directory.iterdir()) if directory.exists() else []

    def create_cgroup_parent(self) -> None:
        """The kubelet's cgroup root in every hierarchy (it refuses to start without them)."""
        for hierarchy in _CGROUP_ROOT.iterdir():
            if not hierarchy.is_dir() or not (hierarchy / "cgroup.procs").exists():
                continue
            top = hierarchy / self.cgroup_parent
            top.mkdir(exist_ok=True)
            # A v1 cpuset starts empty: nothing could run in it until it inherits cpus and mems.
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (top / name).exists() and not (top / name).read_text().strip():
                    (top / name).write_text((hierarchy / name).read_text())

    # ------------------------------------------------------------------ restore

    def restore(self) -> None:
        """Stop every process of the run and undo its machine-wide state (idempotent)."""
        self._kill_processes()
        self._remove_cgroups()
        record = json.loads(self._record.read_text()) if self._record.exists() else {}
        # Pod network namespaces made by our containerd since the record (cni-<uuid>).
        pod_netns = [
            name
            for name in set(self._netns()) - set(record.get("netns", []))
            if name.startswith("cni-")
        ]
        self._unmount(tuple(f"/run/netns/{name}" for name in pod_netns))
        for name in [*pod_netns, self.netns_name]:
            if (Path("/run/netns") / name).exists():
                subprocess.run(["ip", "netns", "delete", name], check=False)  # noqa: S603, S607 - fixed argv, no shell
        for key, value in record.get("sysctls", {}).items():
            with contextlib.suppress(OSError):
                _sysctl_path(key).write_text(value)
        cni = Path("/var/lib/cni")
        if record and not record.get("cni_dir_existed"):
            shutil.rmtree(cni, ignore_errors=True)
        for directory in (self.run_dir, self.state_dir):
            shutil.rmtree(directory, ignore_errors=True)
        self._record.unlink(missing_ok=True)

    def leftovers(self, *, bridges: tuple[str, ...] = ()) -> list[str]:
        """What of a run is still on the machine (empty once :meth:`restore` has run)."""
        found = [f"process {pid}" for pid in self._our_pids()]
        found += [f"netns {name}" for name in self._netns()
                  if name == self.netns_name or name.startswith("cni-")]  # fmt: skip
        found += [f"cgroup {top}" for top in self._cgroup_tops()]
        found += [f"mount {target}" for target in self._mounts()]
        found += [f"directory {d}" for d in (self.state_dir, self.run_dir) if d.exists()]
        found += [f"link {name}" for name in bridges if Path("/sys/class/net", name).exists()]
        save = ["iptables-save"]
        rules = subprocess.run(save, capture_output=True, text=True, check=False).stdout  # noqa: S603 - fixed argv, no shell
        if "KUBE-" in rules or "CNI-" in rules:
            found.append("iptables rules KUBE-*/CNI-* in the machine's namespace")
        if self._record.exists():
            found.append(f"restore record {self._record}")
        return found

    def _our_pids(self) -> list[int]:
        """Processes started for the cluster: by their command line or their cgroup."""
        markers = (str(self.state_dir).encode(), str(self.run_dir).encode())
        found: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                cgroups = (entry / "cgroup").read_text()
            except OSError:
                continue
            if any(marker in cmdline for marker in markers) or (
                f"/{self.cgroup_parent}/" in cgroups or cgroups.endswith(f"/{self.cgroup_parent}")
            ):
                found.add(int(entry.name))
        return sorted(found)

    def _kill_processes(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self._our_pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 15
            while self._our_pids() and time.monotonic() < deadline:
                time.sleep(0.2)
        if leftover := self._our_pids():
            log(f"warning: processes survived SIGKILL: {leftover}")

    def _cgroup_tops(self) -> list[Path]:
        """The kubelet's cgroup root in each hierarchy where it exists."""
        if not _CGROUP_ROOT.exists():
            return []
        tops = (hierarchy / self.cgroup_parent for hierarchy in _CGROUP_ROOT.iterdir())
        return [top for top in tops if top.is_dir()]

    def _remove_cgroups(self) -> None:
        for top in self._cgroup_tops():
            # Children first: a cgroup directory is removable only once it is empty.
            for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if directory.is_dir():
                    with contextlib.suppress(OSError):
                        directory.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()

    def _mounts(self, extra: tuple[str, ...] = ()) -> list[str]:
        """Mount points under the run's directories (and ``extra`` prefixes), in mount order."""
        prefixes = (str(self.state_dir), str(self.run_dir), *extra)
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        return [point for point in points if point.startswith(prefixes)]

    def _unmount(self, extra: tuple[str, ...]) -> None:
        for _ in range(3):
            targets = self._mounts(extra)
            if not targets:
                return
            for target in reversed(targets):
                subprocess.run(["umount", "-l", target], check=False)  # noqa: S603, S607 - no shell
