"""The benchmark suite against the dev-mode stack (``make bench`` / ``make bench-quick``).

    python bench/run.py --quick     # about two minutes: 10% of the graph, short steps
    python bench/run.py             # the full graph, longer steps, bisection, 200 follow samples

Starts the stack (``pinstack dev up`` with rate limits off) unless it already runs, seeds it
(idempotent), measures a floor (``/healthz``), finds the knee of the read and the write mix,
measures follow -> notification latency, cross-checks one endpoint with wrk, and writes
``bench/results/<kind>-<time>.{json,md}`` plus the latest table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Any

from knee import find_knee, measure
from loadgen import LoadGenerator, Step
from notify import follow_notification_latency
from report import machine, render_markdown, update_benchmarks_md
from seed import RESULTS, Population, ensure_fresh_tokens, seed
from stack import Stack, ensure_stack, rate_limits_disabled
from workloads import WorkloadSpec
from wrkcheck import wrk_vs_ours


@dataclass(frozen=True)
class Profile:
    scale: float
    step_seconds: float
    warmup: float
    read_start: float
    write_start: float
    factor: float
    max_steps: int
    bisections: int
    notify_samples: int
    wrk_seconds: int
    generator_processes: int = 1


QUICK = Profile(
    scale=0.1, step_seconds=7, warmup=2, read_start=20, write_start=5, factor=1.6,
    max_steps=8, bisections=0, notify_samples=50, wrk_seconds=6,
)  # fmt: skip
FULL = Profile(
    scale=1.0, step_seconds=30, warmup=5, read_start=20, write_start=5, factor=1.4,
    max_steps=12, bisections=2, notify_samples=200, wrk_seconds=20,
)  # fmt: skip


def _peak_memory(records: list[dict[str, Any]]) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for record in records:
        for name, mb in record["window"]["peak_rss_mb"].items():
            peaks[name] = max(peaks.get(name, 0.0), mb)
    return peaks


class Suite:
    """One run: the stack, its seeded population and the generator, phase by phase."""

    def __init__(self, stack: Stack, population: Population, profile: Profile) -> None:
        self.stack = stack
        self.population = population
        self.profile = profile
        self.records: list[dict[str, Any]] = []

    def spec(self, mix: str) -> WorkloadSpec:
        return WorkloadSpec(
            mix=mix,
            host=f"{self.stack.host}:{self.stack.port}",
            users=[(u.user_id, u.access_token) for u in self.population.users],
            post_ids=self.population.post_ids,
            edges=self.population.edges,
        )

    def fresh(self) -> None:
        """Tokens valid for the next ten minutes at least (they live fifteen)."""
        asyncio.run(ensure_fresh_tokens(self.stack, self.population, valid_for=600))

    def floor(self, generator: LoadGenerator) -> dict[str, Any]:
        print("==> floor: GET /healthz at 100/s")
        step = Step(spec=self.spec("healthz"), rate=100, duration=6, warmup=1)
        record = measure(generator, self.stack.pids, step).as_dict()
        self.records.append(record)
        return record

    def knee(self, generator: LoadGenerator, mix: str, start: float) -> dict[str, Any]:
        print(f"==> knee of the {mix} mix")
        p = self.profile
        knee = find_knee(
            generator,
            self.stack.pids,
            lambda: self.spec(mix),
            start_rate=start,
            factor=p.factor,
            duration=p.step_seconds,
            warmup=p.warmup,
            max_steps=p.max_steps,
            bisections=p.bisections,
            before_step=self.fresh,
        )
        steps = [s.as_dict() for s in knee.steps]
        self.records += steps
        print(f"    knee of the {mix} mix: {knee.knee_rate:.0f} req/s")
        return {"knee_rate": knee.knee_rate, "steps": steps}

    def wrk(self, generator: LoadGenerator) -> dict[str, Any]:
        seconds = self.profile.wrk_seconds
        print(f"==> cross-check with wrk: GET /posts/list, 8 connections, {seconds}s each")
        self.fresh()
        found = wrk_vs_ours(
            generator,
            self.stack.pids,
            self.spec("read"),
            self.stack.base_url,
            connections=8,
            seconds=seconds,
            results=RESULTS,
        )
        ours, theirs = found["ours"]["throughput"], found["wrk"].get("throughput", 0)
        print(f"    ours {ours:.0f}/s, wrk {theirs:.0f}/s")
        return found

    def notify(self) -> dict[str, Any]:
        samples = self.profile.notify_samples
        print(f"==> follow -> notification latency ({samples} follows)")
        self.fresh()
        found: dict[str, Any] = asyncio.run(
            follow_notification_latency(self.stack.api, self.population, samples=samples)
        )
        print(f"    push {json.dumps(found['websocket_push_ms'])}")
        print(f"    feed {json.dumps(found['feed_visible_ms'])}")
        return found


def _write(result: dict[str, Any], *, kind: str, update_md: bool) -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    markdown = render_markdown(result)
    stem.with_suffix(".md").write_text(markdown)
    (RESULTS / f"latest-{kind}.md").write_text(markdown)
    if update_md:
        update_benchmarks_md(markdown, kind=kind)
    print(markdown)
    print(f"==> done in {result['seconds']:.0f}s: {stem}.json and .md")
    print("    the stack is still up: make dev-down stops it")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the two-minute version")
    parser.add_argument("--scale", type=float, help="override the profile's share of the graph")
    parser.add_argument("--no-md", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    kind = "quick" if args.quick else "full"
    scale = args.scale if args.scale is not None else profile.scale
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.monotonic()

    stack = ensure_stack()
    print(f"==> stack at {stack.base_url} (data {stack.data_dir})")
    print(f"    rate limits off: {rate_limits_disabled(stack)}")
    population = asyncio.run(seed(stack, scale=scale))
    suite = Suite(stack, population, profile)
    suite.fresh()
    result: dict[str, Any] = {
        "kind": kind,
        "command": "python bench/run.py " + shlex.join(sys.argv[1:]),
        "started": started,
        "machine": machine(),
        "stack": {"base_url": stack.base_url, "data_dir": str(stack.data_dir), "pids": stack.pids},
        "seed": {
            "users": len(population.users),
            "follows": 2 * len(population.edges),
            "posts": len(population.post_ids),
            "seconds": round(time.monotonic() - t0, 1),
        },
        "profile": profile.__dict__ | {"scale": scale},
        "knees": {},
    }
    with LoadGenerator(profile.generator_processes) as generator:
        result["baseline"] = suite.floor(generator)
        result["knees"]["read"] = suite.knee(generator, "read", profile.read_start)
        result["knees"]["write"] = suite.knee(generator, "write", profile.write_start)
        result["wrk"] = suite.wrk(generator)
    result["notify"] = suite.notify()
    result["peak_rss_mb"] = _peak_memory(suite.records)
    result["seconds"] = round(time.monotonic() - t0, 1)
    _write(result, kind=kind, update_md=not args.no_md)


if __name__ == "__main__":
    main()
