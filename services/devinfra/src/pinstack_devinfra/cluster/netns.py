"""The network namespace the whole cluster and every client of it live in.

Inside it: loopback, an empty bridge holding the node address (a /32), a route for the service
CIDR, and no default route — an address outside the namespace is unreachable in the kernel, so
no packet is ever made for one. Deleting the namespace removes its bridges, routes and iptables
rules. Processes join it with ``nsenter --net`` (not ``ip netns exec``, which also gives each
command a fresh sysfs: the kubelet then loses the cgroup mounts). Python clients join it through
:class:`NetnsThread`: a thread that ``setns()``-es itself in, so sockets it opens belong to the
namespace while the rest of the test process stays outside.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import os
import subprocess
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["NetnsThread", "NetworkNamespace"]

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed program
        ["ip", *args],  # noqa: S607 - iproute2 from PATH
        check=check,
        capture_output=True,
        text=True,
    )


@dataclass(frozen=True)
class NetworkNamespace:
    """``name``, holding bridge ``bridge`` at ``node_ip``/32 and a route to ``service_cidr``."""

    name: str
    bridge: str
    node_ip: str
    service_cidr: str

    @property
    def path(self) -> Path:
        return Path("/run/netns") / self.name

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        _ip("netns", "add", self.name)
        _ip("-n", self.name, "link", "set", "lo", "up")
        _ip("-n", self.name, "link", "add", self.bridge, "type", "bridge")
        _ip("-n", self.name, "addr", "add", f"{self.node_ip}/32", "dev", self.bridge)
        _ip("-n", self.name, "link", "set", self.bridge, "up")
        _ip("-n", self.name, "route", "add", self.service_cidr, "dev", self.bridge)
        for key, value in {
            "net.ipv4.ip_forward": "1",
            # Service traffic between pods on one bridge must pass iptables (kube-proxy's DNAT).
            "net.bridge.bridge-nf-call-iptables": "1",
            "net.ipv4.conf.all.route_localnet": "1",
        }.items():
            self.run(["sysctl", "-q", "-w", f"{key}={value}"], check=False)

    def delete(self) -> None:
        if self.exists():
            _ip("netns", "delete", self.name, check=False)

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` prefixed so that they run inside the namespace (network only)."""
        return ["nsenter", f"--net={self.path}", "--", *args]

    def run(
        self, args: Sequence[str], *, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - callers pass fixed programs
            self.command(args), check=check, capture_output=True, text=True, timeout=timeout
        )


class NetnsThread:
    """One thread inside the namespace running an asyncio loop; submit coroutines or callables.

    ``setns()`` moves only the calling thread, and sockets keep the namespace they were made in,
    so every client must open its connections inside :meth:`run` or :meth:`submit`.
    """

    def __init__(self, namespace: NetworkNamespace) -> None:
        self._namespace = namespace
        self._loop = asyncio.new_event_loop()
        self._ready = concurrent.futures.Future[None]()
        self._thread = threading.Thread(target=self._main, name="netns", daemon=True)
        self._thread.start()
        self._ready.result(timeout=10)

    def _main(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(self._namespace.path, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns into the cluster network failed")
            finally:
                os.close(fd)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting constructor
            self._ready.set_exception(error)
            return
        self._ready.set_result(None)
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coroutine`` on the namespace's loop without waiting (background load)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def run(self, coroutine: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coroutine`` on the namespace's loop and wait for its result."""
        return self.submit(coroutine).result(timeout=timeout)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
