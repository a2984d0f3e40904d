"""Knee finding: step the arrival rate up until the stack stops meeting the target.

A step passes when the p99 of every request is within ``P99_LIMIT_MS``, nothing failed, and
the achieved throughput is within 5% of the target (an open-loop generator that falls behind
would otherwise pass by sending less). Rates grow geometrically until the first failure, then
an optional bisection between the last pass and the first failure narrows the knee. A step
that misses only on latency is run once more before it counts as failed: on a shared machine a
neighbour's burst can spoil five seconds of samples, while an error is always the stack's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadgen import LoadGenerator, Step, StepStats, summarize
from procmon import ProcMonitor
from workloads import WorkloadSpec

__all__ = ["P99_LIMIT_MS", "Knee", "StepRecord", "find_knee", "measure"]

P99_LIMIT_MS = 50.0


@dataclass
class StepRecord:
    stats: StepStats
    window: dict[str, Any]
    passed: bool
    why: str
    attempt: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "stats": self.stats.as_dict(),
            "window": self.window,
            "passed": self.passed,
            "attempt": self.attempt,
            "why": self.why,
        }


@dataclass
class Knee:
    mix: str
    knee_rate: float  # highest target rate that passed (0 if none did)
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def best(self) -> StepRecord | None:
        passing = [s for s in self.steps if s.passed]
        return max(passing, key=lambda s: s.stats.target_rate) if passing else None


def verdict(stats: StepStats) -> tuple[bool, str]:
    total = stats.total
    if total["errors"]:
        return False, f"{total['errors']} errors {total['error_kinds']}"
    if stats.mode == "open" and total["throughput"] < 0.95 * stats.target_rate:
        return False, f"throughput {total['throughput']:.0f}/s < 95% of target"
    if total["p99"] > P99_LIMIT_MS:
        return False, f"p99 {total['p99']:.1f} ms > {P99_LIMIT_MS:.0f} ms"
    return True, "ok"


def measure(generator: LoadGenerator, monitor_pids: dict[str, int], step: Step) -> StepRecord:
    monitor = ProcMonitor(monitor_pids, generator.pids)
    monitor.start()
    results = generator.run(step)
    window = monitor.stop()
    stats = summarize(step, results)
    passed, why = verdict(stats)
    return StepRecord(stats=stats, window=window.__dict__, passed=passed, why=why)


def _line(record: StepRecord) -> str:
    s = record.stats
    t = s.total
    cpu = record.window["cpu_cores"]
    busiest = max(
        ((k, v) for k, v in cpu.items() if k not in {"generator", "monitor"}),
        key=lambda kv: kv[1],
        default=("-", 0.0),
    )
    return (
        f"    {s.mix:<10} {s.target_rate:7.0f}/s -> {t['throughput']:7.1f}/s  p50 {t['p50']:6.1f}  "
        f"p99 {t['p99']:7.1f}  p99.9 {t['p999']:7.1f} ms  err {t['errors']:<4} "
        f"gen {cpu.get('generator', 0):.2f} cores, busiest {busiest[0]} {busiest[1]:.2f}, "
        f"other {record.window['other_cores']:.2f}  "
        + ("PASS" if record.passed else f"FAIL: {record.why}")
    )


def find_knee(
    generator: LoadGenerator,
    monitor_pids: dict[str, int],
    spec_for: Callable[[], WorkloadSpec],
    *,
    start_rate: float,
    factor: float,
    duration: float,
    warmup: float,
    max_steps: int,
    bisections: int = 0,
    retries: int = 1,
    before_step: Callable[[], None] | None = None,
) -> Knee:
    """Geometric steps from ``start_rate``; ``spec_for`` is called per step (fresh tokens)."""
    knee = Knee(mix=spec_for().mix, knee_rate=0.0)
    good, bad = 0.0, 0.0
    rate = start_rate

    def run(at: float) -> bool:
        for attempt in range(1 + retries):
            if before_step is not None:
                before_step()
            step = Step(spec=spec_for(), rate=at, duration=duration, warmup=warmup)
            record = measure(generator, monitor_pids, step)
            record.attempt = attempt + 1
            knee.steps.append(record)
            print(_line(record), flush=True)
            # Errors are the stack's; a latency miss may be a neighbour's burst: look again.
            if record.passed or record.stats.total["errors"]:
                break
        return record.passed

    for _ in range(max_steps):
        if run(rate):
            good = rate
            rate = round(rate * factor)
        else:
            bad = rate
            break
    for _ in range(bisections if good and bad else 0):
        middle = round((good + bad) / 2)
        if middle in (good, bad):
            break
        if run(middle):
            good = middle
        else:
            bad = middle
    knee.knee_rate = good
    return knee
