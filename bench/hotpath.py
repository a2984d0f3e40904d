"""Profile the read mix's hot path: components under cProfile while the generator runs.

    python bench/hotpath.py [--components gateway,post] [--mix read] [--rate 40] [--seconds 30]

Each chosen component of the running dev stack is stopped and started again, with the very
environment it had, under ``serve_variant.py --profile``; the read mix runs at a fixed rate; the
components are stopped (which writes their profiles) and ``pinstack dev up`` puts the normal
processes back. The report groups CPU time by library, which says more about a service than
the top functions alone (a request is spread thin over SQLAlchemy, gRPC and protobuf).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pstats
import signal
from pathlib import Path
from typing import Any

from knee import measure
from loadgen import LoadGenerator, Step
from seed import RESULTS, ensure_fresh_tokens, seed
from stack import Stack, ensure_stack, load_stack
from swap import restore, swap
from workloads import WorkloadSpec

__all__ = ["group_by_library", "profile_components"]

HERE = Path(__file__).resolve().parent

# Path fragment -> bucket, first match wins; order matters (pinstack_ before site-packages).
BUCKETS = (
    ("pinstack_common", "pinstack_common"),
    ("pinstack_gateway", "pinstack_gateway"),
    ("pinstack_post", "pinstack_post"),
    ("pinstack_user", "pinstack_user"),
    ("pinstack_notification", "pinstack_notification"),
    ("/pinstack/", "generated protobuf code"),
    ("sqlalchemy", "sqlalchemy"),
    ("asyncpg", "asyncpg"),
    ("grpc", "grpc"),
    ("google/protobuf", "protobuf"),
    ("opentelemetry", "opentelemetry"),
    ("prometheus_client", "prometheus_client"),
    ("structlog", "structlog"),
    ("/logging/", "logging"),
    ("redis", "redis"),
    ("pydantic", "pydantic"),
    ("fastapi", "fastapi"),
    ("starlette", "starlette"),
    ("uvicorn", "uvicorn"),
    ("h11", "h11"),
    ("httptools", "httptools"),
    ("jwt", "jwt/crypto"),
    ("cryptography", "jwt/crypto"),
    ("asyncio", "asyncio"),
    ("json", "json"),
)


def _bucket(filename: str, function: str) -> str:
    if filename == "~":  # a built-in: name it by what it is
        for key, name in (("grpc", "grpc"), ("protobuf", "protobuf"), ("asyncpg", "asyncpg")):
            if key in function:
                return name
        if "select" in function or "epoll" in function:
            return "waiting (epoll)"
        return "builtins"
    for fragment, name in BUCKETS:
        if fragment in filename:
            return name
    return "other"


def group_by_library(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own (exclusive) CPU time summed per library, largest first."""
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        bucket = _bucket(filename, function)
        totals[bucket] = totals.get(bucket, 0.0) + tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])


def _top(stats: pstats.Stats, key: str, count: int) -> list[dict[str, Any]]:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2 if key == "tottime" else 3])[:count]
    return [
        {"function": f"{Path(f).name}:{line}:{fn}", "calls": nc, "tottime": tt, "cumtime": ct}
        for (f, line, fn), (_cc, nc, tt, ct, _callers) in rows
    ]


def profile_components(
    stack: Stack, spec: WorkloadSpec, *, components: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    out_dir = RESULTS / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = {name: out_dir / f"{name}.prof" for name in components}
    for out in outs.values():
        out.unlink(missing_ok=True)
    pids = dict(stack.pids)
    variants = {name: ["--profile", str(outs[name])] for name in components}
    started = swap(stack, pids, variants, tag="profiled")
    print(
        f"==> profiling {', '.join(components)}: {spec.mix} mix at {rate:.0f}/s for {seconds:.0f}s"
    )
    with LoadGenerator(1) as generator:
        # A few unprofiled seconds first: connections, caches and lazy imports warm up.
        measure(generator, pids, Step(spec=spec, rate=rate, duration=3, warmup=1))
        for process in started.values():
            process.send_signal(signal.SIGUSR1)
        record = measure(generator, pids, Step(spec=spec, rate=rate, duration=seconds, warmup=2))
        for process in started.values():
            process.send_signal(signal.SIGUSR2)
    report: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "load": record.as_dict(),
        "components": {},
    }
    print("==> restoring the normal processes (pinstack dev up adopts the rest)")
    restore(started)
    for name, out in outs.items():
        stats = pstats.Stats(str(out))
        total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
        report["components"][name] = {
            "cpu_seconds": total,
            "by_library": [
                (k, round(v, 3), round(100 * v / total, 1)) for k, v in group_by_library(stats)
            ],
            "top_tottime": _top(stats, "tottime", 25),
            "top_cumtime": _top(stats, "cumtime", 40),
            "profile": str(out),
        }
    return report


def print_report(report: dict[str, Any]) -> None:
    for name, part in report["components"].items():
        print(f"--- {name}: {part['cpu_seconds']:.1f} CPU s under profile; own time by library:")
        for library, seconds, share in part["by_library"][:14]:
            print(f"      {share:5.1f}%  {seconds:7.2f}s  {library}")
        print("    top functions by own time:")
        for row in part["top_tottime"][:12]:
            print(f"      {row['tottime']:7.2f}s  {row['calls']:>8}  {row['function']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--components", default="gateway,post")
    parser.add_argument("--mix", choices=["read", "write"], default="read")
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    stack = ensure_stack()
    population = asyncio.run(seed(stack, scale=args.scale))
    asyncio.run(ensure_fresh_tokens(stack, population, valid_for=args.seconds + 300))
    spec = WorkloadSpec(
        mix=args.mix,
        host=f"{stack.host}:{stack.port}",
        users=[(u.user_id, u.access_token) for u in population.users],
        post_ids=population.post_ids,
        edges=population.edges,
    )
    report = profile_components(
        stack, spec, components=args.components.split(","), rate=args.rate, seconds=args.seconds
    )
    (RESULTS / f"profile-{args.mix}.json").write_text(json.dumps(report, indent=1, default=str))
    print_report(report)
    if load_stack() is None:
        raise SystemExit("the stack did not come back after profiling")


if __name__ == "__main__":
    main()
