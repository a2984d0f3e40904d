"""Profile the read mix's hot path: components under cProfile while the generator runs.

    python bench/hotpath.py [--components gateway,post] [--rate 40] [--seconds 30]

Each chosen component of the running dev stack is stopped and started again, with the very
environment it had, under ``profiled_serve.py``; the read mix runs at a fixed rate; the
components are stopped (which writes their profiles) and ``pinstack dev up`` puts the normal
processes back. The report groups CPU time by library, which says more about a service than
the top functions alone (a request is spread thin over SQLAlchemy, gRPC and protobuf).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from knee import measure
from loadgen import LoadGenerator, Step
from seed import RESULTS, ensure_fresh_tokens, seed
from stack import Stack, _environ, ensure_stack, load_stack, pinstack_dev
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


def _ready(stack: Stack, name: str, port: int) -> bool:
    if name == "gateway":
        try:
            with urllib.request.urlopen(f"{stack.base_url}/readyz", timeout=2) as reply:  # noqa: S310
                return int(reply.status) == 200
        except OSError:
            return False
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not Path(f"/proc/{pid}").exists() or "zombie" in _status(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return ""


def profile_components(
    stack: Stack, spec: WorkloadSpec, *, components: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    out_dir = RESULTS / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    state = json.loads((stack.data_dir / "dev" / "state.json").read_text())
    profiled: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name in components:
        env = _environ(stack.pids[name])
        _stop(stack.pids[name])
        out = out_dir / f"{name}.prof"
        out.unlink(missing_ok=True)
        log = (stack.data_dir / "dev" / "logs" / f"{name}.profiled.log").open("ab")
        command = [sys.executable, str(HERE / "profiled_serve.py"), name, str(out)]
        profiled[name] = (
            subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT),
            out,
        )
    deadline = time.monotonic() + 90
    for name in components:
        while not _ready(stack, name, int(state["ports"].get(name, 0))):
            if time.monotonic() > deadline or profiled[name][0].poll() is not None:
                raise SystemExit(f"profiled {name} did not come up; see its .profiled.log")
            time.sleep(0.3)
    print(f"==> profiling {', '.join(components)}: read mix at {rate:.0f}/s for {seconds:.0f}s")
    with LoadGenerator(1) as generator:
        # A few unprofiled seconds first: connections, caches and lazy imports warm up.
        measure(generator, stack.pids, Step(spec=spec, rate=rate, duration=3, warmup=1))
        for process, _ in profiled.values():
            process.send_signal(signal.SIGUSR1)
        record = measure(
            generator, stack.pids, Step(spec=spec, rate=rate, duration=seconds, warmup=2)
        )
        for process, _ in profiled.values():
            process.send_signal(signal.SIGUSR2)
    report: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "load": record.as_dict(),
        "components": {},
    }
    for name, (process, out) in profiled.items():
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
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
    print("==> restoring the normal processes (pinstack dev up adopts the rest)")
    pinstack_dev("up")
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
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    stack = ensure_stack()
    population = asyncio.run(seed(stack, scale=args.scale))
    asyncio.run(ensure_fresh_tokens(stack, population, valid_for=args.seconds + 300))
    spec = WorkloadSpec(
        mix="read",
        host=f"{stack.host}:{stack.port}",
        users=[(u.user_id, u.access_token) for u in population.users],
        post_ids=population.post_ids,
        edges=population.edges,
    )
    report = profile_components(
        stack, spec, components=args.components.split(","), rate=args.rate, seconds=args.seconds
    )
    (RESULTS / "profile.json").write_text(json.dumps(report, indent=1, default=str))
    print_report(report)
    if load_stack() is None:
        raise SystemExit("the stack did not come back after profiling")


if __name__ == "__main__":
    main()
