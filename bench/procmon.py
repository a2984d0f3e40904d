"""CPU and memory of the stack's processes (and of everything else) during a step.

The pids come from dev mode's ``state.json``, never from a name lookup: other stacks and test
suites run on this machine too. PostgreSQL is a tree (postmaster plus one backend per
connection), counted as a whole. The machine-wide busy time minus the stack's and the
generator's is reported as "other": on a shared 2-core machine it says how noisy a number is.
The orchestrating process (this monitor included) is reported apart as "monitor", so the
generator's figure is the generator's alone.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["ProcMonitor", "peak_rss_mb"]


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of the process's resident set (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class _Tracked:
    name: str
    root: psutil.Process
    tree: bool  # sum over children too (PostgreSQL)
    peak_rss_mb: float = 0.0


def _cpu_of(process: psutil.Process, *, tree: bool) -> float:
    try:
        times = process.cpu_times()
        total = float(times.user + times.system)
        if tree:
            # Backends that already exited are accounted in the postmaster's children times.
            total += float(times.children_user + times.children_system)
            for child in process.children(recursive=True):
                own = child.cpu_times()
                total += float(own.user + own.system)
        return total
    except psutil.Error:
        return 0.0


def _rss_mb(process: psutil.Process, *, tree: bool) -> float:
    """RSS of one process; for a tree the PSS sum, since PostgreSQL's backends share its buffers
    and a sum of RSS would count the shared memory once per backend."""
    try:
        if not tree:
            return float(process.memory_info().rss) / 2**20
        members = [process, *process.children(recursive=True)]
        return float(sum(p.memory_full_info().pss for p in members)) / 2**20
    except psutil.Error:
        return 0.0


@dataclass
class Window:
    """What one step cost: CPU cores used per process, peak memory, machine load."""

    seconds: float
    cpu_cores: dict[str, float]
    peak_rss_mb: dict[str, float]
    machine_busy_cores: float
    other_cores: float  # busy cores not explained by the stack or the generator
    loadavg_1m: float
    extra: dict[str, Any] = field(default_factory=dict)


class ProcMonitor:
    """Sample every ``interval`` seconds in a thread between :meth:`start` and :meth:`stop`."""

    def __init__(
        self, pids: dict[str, int], generator_pids: list[int], *, interval: float = 2.0
    ) -> None:
        self._tracked = []
        for name, pid in sorted(pids.items()):
            try:
                self._tracked.append(_Tracked(name, psutil.Process(pid), tree=name == "postgres"))
            except psutil.Error:
                continue
        self._me = psutil.Process(os.getpid())
        generators = []
        for pid in generator_pids:
            try:
                generators.append(psutil.Process(pid))
            except psutil.Error:
                continue
        self._generators = generators
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu0: dict[str, float] = {}
        self._gen0 = 0.0
        self._me0 = 0.0
        self._machine0: Any = None
        self._t0 = 0.0

    def _generator_cpu(self) -> float:
        return sum(_cpu_of(p, tree=False) for p in self._generators)

    def _sample(self) -> None:
        # Single processes have an exact peak (VmHWM) read at the end; only the PostgreSQL
        # tree needs sampling, and reading PSS is not free: every two seconds is enough.
        while not self._stop.wait(self._interval):
            for item in self._tracked:
                if item.tree:
                    item.peak_rss_mb = max(item.peak_rss_mb, _rss_mb(item.root, tree=True))

    def start(self) -> None:
        self._cpu0 = {t.name: _cpu_of(t.root, tree=t.tree) for t in self._tracked}
        self._gen0 = self._generator_cpu()
        self._me0 = _cpu_of(self._me, tree=False)
        self._machine0 = psutil.cpu_times()
        self._t0 = time.monotonic()
        for item in self._tracked:
            item.peak_rss_mb = _rss_mb(item.root, tree=item.tree)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> Window:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        seconds = max(time.monotonic() - self._t0, 1e-6)
        cpu = {
            t.name: (_cpu_of(t.root, tree=t.tree) - self._cpu0[t.name]) / seconds
            for t in self._tracked
        }
        generator = (self._generator_cpu() - self._gen0) / seconds
        cpu["generator"] = generator
        cpu["monitor"] = (_cpu_of(self._me, tree=False) - self._me0) / seconds
        machine1 = psutil.cpu_times()
        busy = sum(
            getattr(machine1, f) - getattr(self._machine0, f)
            for f in ("user", "nice", "system", "irq", "softirq", "steal")
        )
        machine = busy / seconds
        peaks = {}
        for item in self._tracked:
            # VmHWM is exact for one process; a tree's peak is the largest sampled PSS sum.
            hwm = 0.0 if item.tree else peak_rss_mb(item.root.pid)
            peaks[item.name] = round(max(hwm, item.peak_rss_mb), 1)
        ours = sum(v for k, v in cpu.items())
        return Window(
            seconds=seconds,
            cpu_cores={k: round(v, 3) for k, v in cpu.items()},
            peak_rss_mb=peaks,
            machine_busy_cores=round(machine, 3),
            other_cores=round(max(0.0, machine - ours), 3),
            loadavg_1m=os.getloadavg()[0],
        )
