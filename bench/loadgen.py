"""The open-loop load generator: fixed arrival rate, latency from the scheduled send time.

Each request has a scheduled time ``start + i / rate`` and is sent then whether or not earlier
ones have answered; its latency runs from that scheduled time, so time spent waiting for a
connection or behind a late event loop is counted instead of silently dropped (no coordinated
omission). A closed-loop mode (``connections`` loops sending back to back) exists only to
compare like for like with wrk.

The generator runs in its own processes (``spawn``, uvloop) so the orchestrating process, which
samples memory and CPU, never delays a send; each process reports its own CPU time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing as mp
import resource
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any, Literal

from rawhttp import ConnectionPool, HttpError
from workloads import Planned, Workload, WorkloadSpec, make_workload

__all__ = ["LoadGenerator", "Step", "StepStats", "percentile", "summarize"]

Mode = Literal["open", "closed"]


@dataclass(frozen=True)
class Step:
    spec: WorkloadSpec
    rate: float  # requests per second, all generator processes together (open mode)
    duration: float  # seconds of sending, warm-up included
    warmup: float = 2.0  # requests scheduled in the first seconds are not measured
    mode: Mode = "open"
    connections: int = 256  # open: pool limit per process; closed: loops per process
    timeout: float = 5.0  # an answer later than this is an error


@dataclass
class WorkerResult:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # successes only
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    scheduled: int = 0
    send_lags: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Runner:
    def __init__(self, step: Step, start_wall: float) -> None:
        self.step = step
        self.workload: Workload = make_workload(step.spec)
        self.result = WorkerResult()
        self.pool = ConnectionPool(
            step.spec.host.split(":")[0],
            int(step.spec.host.split(":")[1]),
            max_connections=step.connections,
        )
        # Scheduled times live on perf_counter: uvloop's loop.time() has millisecond ticks.
        self.start = time.perf_counter() + (start_wall - time.time())
        self.measure_from = self.start + step.warmup
        self.end = self.start + step.duration

    def _record(self, planned: Planned, t0: float, status: int | None, error: str) -> None:
        if t0 < self.measure_from:
            return
        if error:
            self.result.errors.setdefault(planned.endpoint, Counter())[error] += 1
        else:
            self.result.latencies.setdefault(planned.endpoint, []).append(time.perf_counter() - t0)

    async def _one(self, planned: Planned, t0: float) -> None:
        status: int | None = None
        error = ""
        try:
            async with asyncio.timeout(self.step.timeout):
                status, _ = await self.pool.send(planned.raw)
            if status >= 400:
                error = str(status)
        except TimeoutError:
            error = "timeout"
        except (HttpError, OSError) as failure:
            error = type(failure).__name__
        self._record(planned, t0, status, error)
        self.workload.finished(planned, status)

    async def open_loop(self, offset: float, rate: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        count = int(rate * self.step.duration)
        for i in range(count):
            t0 = self.start + offset + i / rate
            delay = t0 - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            if t0 >= self.measure_from:
                self.result.send_lags.append(max(0.0, now - t0))
            task = asyncio.create_task(self._one(self.workload.next(), t0))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        self.result.scheduled = count
        if tasks:
            await asyncio.wait(tasks)

    async def closed_loop(self) -> None:
        await asyncio.sleep(max(0.0, self.start - time.perf_counter()))

        async def loop() -> None:
            while (t0 := time.perf_counter()) < self.end:
                await self._one(self.workload.next(), t0)
                self.result.scheduled += 1

        await asyncio.gather(*(loop() for _ in range(self.step.connections)))

    async def cleanup(self) -> None:
        """Undo the step's follows (unmeasured) so the next step starts from the seeded graph."""
        pending = self.workload.cleanup()
        semaphore = asyncio.Semaphore(8)

        async def one(raw: bytes) -> None:
            async with semaphore:
                with contextlib.suppress(HttpError, OSError, TimeoutError):
                    async with asyncio.timeout(10):
                        await self.pool.send(raw)

        await asyncio.gather(*(one(raw) for raw in pending))
        self.pool.close()


async def _run_step(step: Step, start_wall: float, offset: float, rate: float) -> WorkerResult:
    runner = _Runner(step, start_wall)
    cpu0, wall0 = _cpu(), time.perf_counter()
    if step.mode == "open":
        await runner.open_loop(offset, rate)
    else:
        await runner.closed_loop()
    runner.result.cpu_seconds = _cpu() - cpu0
    runner.result.wall_seconds = time.perf_counter() - wall0
    await runner.cleanup()
    return runner.result


def _worker_main(index: int, workers: int, pipe: Connection) -> None:
    """A generator process: run the steps it is sent until it is sent None."""
    import uvloop  # only in the generator processes; the orchestrator uses plain asyncio

    while (message := pipe.recv()) is not None:
        step, start_wall = message
        spec = replace(step.spec, worker=index, workers=workers)
        mine = replace(step, spec=spec)
        rate = step.rate / workers
        offset = index / step.rate if step.rate else 0.0  # interleave the processes' schedules
        pipe.send(uvloop.run(_run_step(mine, start_wall, offset, rate)))
    pipe.close()


class LoadGenerator:
    """A pool of generator processes, kept across steps (spawning costs ~0.5 s of CPU)."""

    def __init__(self, processes: int = 1) -> None:
        context = mp.get_context("spawn")
        self._pipes: list[Connection] = []
        self._procs: list[Any] = []
        for index in range(processes):
            ours, theirs = context.Pipe()
            proc = context.Process(
                target=_worker_main, args=(index, processes, theirs), daemon=True
            )
            proc.start()
            self._pipes.append(ours)
            self._procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [int(p.pid) for p in self._procs]

    def run(self, step: Step) -> list[WorkerResult]:
        start_wall = time.time() + 0.5  # every process starts its schedule at the same instant
        for pipe in self._pipes:
            pipe.send((step, start_wall))
        return [pipe.recv() for pipe in self._pipes]

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self._procs:
            proc.join(timeout=10)

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class StepStats:
    """One step, all processes merged; latencies in milliseconds."""

    mix: str
    mode: str
    target_rate: float
    measured_seconds: float
    endpoints: dict[str, dict[str, Any]]
    total: dict[str, Any]
    generator_cpu_cores: float  # CPU seconds of the generator processes per wall second
    send_lag_p99_ms: float
    send_lag_max_ms: float

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _latency_block(samples: list[float], errors: Counter[str], seconds: float) -> dict[str, Any]:
    ordered = sorted(samples)
    ms = [x * 1000 for x in ordered]
    return {
        "ok": len(ms),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "throughput": len(ms) / seconds if seconds > 0 else 0.0,
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "p999": percentile(ms, 99.9),
        "max": ms[-1] if ms else math.nan,
    }


def summarize(step: Step, results: list[WorkerResult]) -> StepStats:
    measured = step.duration - step.warmup
    merged: dict[str, list[float]] = {}
    errors: dict[str, Counter[str]] = {}
    for result in results:
        for endpoint, samples in result.latencies.items():
            merged.setdefault(endpoint, []).extend(samples)
        for endpoint, counts in result.errors.items():
            errors.setdefault(endpoint, Counter()).update(counts)
    endpoints = {
        name: _latency_block(merged.get(name, []), errors.get(name, Counter()), measured)
        for name in sorted(set(merged) | set(errors))
    }
    everything = [x for samples in merged.values() for x in samples]
    all_errors: Counter[str] = Counter()
    for counts in errors.values():
        all_errors.update(counts)
    lags = sorted(x * 1000 for r in results for x in r.send_lags)
    wall = max((r.wall_seconds for r in results), default=1.0)
    return StepStats(
        mix=step.spec.mix,
        mode=step.mode,
        target_rate=step.rate,
        measured_seconds=measured,
        endpoints=endpoints,
        total=_latency_block(everything, all_errors, measured),
        generator_cpu_cores=sum(r.cpu_seconds for r in results) / wall,
        send_lag_p99_ms=percentile(lags, 99) if lags else 0.0,
        send_lag_max_ms=lags[-1] if lags else 0.0,
    )
