"""Before/after in one run: the read mix on the normal components, then on a variant, then normal.

    python bench/ab.py [--variant uvloop | --baseline REV] [--components post] [--rates 100,200]
                       [--seconds 20] [--scale 0.1]

A (the normal processes, restarted first so they run the checkout as it is now), B (the chosen
components restarted under ``serve_variant.py``) and A again, at the same fixed rates: the
second A shows how much the machine drifted meanwhile. Besides latency, each row has CPU
milliseconds per request per component, which on a shared machine is far steadier than latency.

B is either a runtime variant (``--variant uvloop``) or the chosen components' own code as of
an earlier revision (``--baseline REV``: ``services/<component>/src`` of REV, extracted with
``git archive`` and imported in place of the checkout's; every other package stays the
checkout's), which measures a committed change against the code it replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from knee import measure
from loadgen import LoadGenerator, Step
from seed import RESULTS, ensure_fresh_tokens, seed
from stack import Stack, ensure_stack, pinstack_dev
from swap import restore, stop, swap
from workloads import WorkloadSpec

__all__ = ["VARIANTS", "compare"]

VARIANTS: dict[str, list[str]] = {"uvloop": ["--uvloop"]}
ROOT = Path(__file__).resolve().parent.parent
STACK_PROCESSES = (
    "gateway", "post", "user", "notification", "auth", "relation", "postgres", "redis", "kafka",
)  # fmt: skip


def _row(label: str, rate: float, record: dict[str, Any]) -> dict[str, Any]:
    stats, window = record["stats"], record["window"]
    achieved = stats["total"]["throughput"] or 1.0
    cpu_ms = {
        name: 1000 * window["cpu_cores"].get(name, 0.0) / achieved for name in STACK_PROCESSES
    }
    return {
        "variant": label,
        "rate": rate,
        "achieved": achieved,
        "p50": stats["total"]["p50"],
        "p99": stats["total"]["p99"],
        "errors": stats["total"]["errors"],
        "error_kinds": stats["total"]["error_kinds"],
        "cpu_ms_per_request": cpu_ms,
        "stack_cpu_ms_per_request": sum(cpu_ms.values()),
        "other_cores": window["other_cores"],
    }


def _run_rates(
    generator: LoadGenerator, pids: dict[str, int], spec: WorkloadSpec, *, rates: list[float],
    seconds: float, label: str,
) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    # An unmeasured warm-up: fresh processes open their pools and fill caches first.
    measure(generator, pids, Step(spec=spec, rate=rates[0], duration=10, warmup=9))
    for rate in rates:
        record = measure(generator, pids, Step(spec=spec, rate=rate, duration=seconds, warmup=3))
        row = _row(label, rate, record.as_dict())
        rows.append(row)
        print(
            f"    {label:<10} {rate:5.0f}/s  p50 {row['p50']:6.1f}  p99 {row['p99']:7.1f} ms  "
            f"stack CPU {row['stack_cpu_ms_per_request']:.2f} ms/req "
            f"(post {row['cpu_ms_per_request']['post']:.2f}, "
            f"gateway {row['cpu_ms_per_request']['gateway']:.2f})  other {row['other_cores']:.2f}",
            flush=True,
        )
    return rows


def _answers(api: str, spec: WorkloadSpec) -> list[Any]:
    """Post lists of 20 authors, three pages each (one past the end), every other filter (tag in
    another case, time ranges, none; first page, a middle one, past the end): a variant must
    answer the same JSON as the code it stands in for. Single posts are left out: they come
    from the Redis cache both A and B share, so comparing them would prove nothing."""
    import httpx

    pages = ((0, 20), (3, 4), (1000, 10))
    paths = [
        f"/posts/list?author_id={user}&offset={offset}&limit={limit}"
        for user, _ in spec.users[:20]
        for offset, limit in pages
    ]
    filters = (
        "tag=TRAVEL", "tag=food", "created_after=2000-01-01T00:00:00Z",
        "created_before=2100-01-01T00:00:00Z", f"author_id={spec.users[0][0]}&tag=Music", "",
    )  # fmt: skip
    paths += [f"/posts/list?{f}&offset={o}&limit={n}" for f in filters for o, n in pages]
    with httpx.Client(base_url=api, timeout=30) as client:
        return [client.get(path).json() for path in paths]


def baseline_sources(revision: str, components: list[str], into: Path) -> dict[str, list[str]]:
    """``serve_variant.py`` flags running each component's package as of ``revision``."""
    paths = [f"services/{name}/src" for name in components]
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, *paths], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return {
        name: ["--source", str(into / path)] for name, path in zip(components, paths, strict=True)
    }


def _restart_normal(stack: Stack, components: list[str]) -> dict[str, int]:
    """Restart ``components`` normally: a stack started before the last commit would otherwise
    measure old code as A."""
    for name in components:
        stop(stack.pids[name])
    pinstack_dev("up")
    return dict(ensure_stack().pids)


def compare(
    stack: Stack, spec: WorkloadSpec, *, variant: str, flags: dict[str, list[str]],
    rates: list[float], seconds: float,
) -> dict[str, Any]:  # fmt: skip
    rows: list[dict[str, Any]] = []
    components = list(flags)
    with LoadGenerator(1) as generator:
        print("==> A: the normal processes (restarted)")
        pids = _restart_normal(stack, components)
        before = _answers(stack.api, spec)
        rows += _run_rates(generator, pids, spec, rates=rates, seconds=seconds, label="A")
        print(f"==> B: {', '.join(components)} as {variant}")
        started = swap(stack, pids, flags, tag=variant.replace(":", "-"))
        try:
            same = _answers(stack.api, spec) == before
            print(f"    same answers as A: {same}")
            rows += _run_rates(generator, pids, spec, rates=rates, seconds=seconds, label="B")
        finally:
            restore(started)
        print("==> A again (drift check)")
        fresh_pids = dict(ensure_stack().pids)
        rows += _run_rates(
            generator, fresh_pids, spec, rates=rates, seconds=seconds, label="A again"
        )
    return {"variant": variant, "components": components, "rows": rows, "same_answers": same}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"A/B `{result['variant']}` on {', '.join(result['components'])} (read mix, "
        f"{result['seconds']:.0f} s per row, scale {result['scale']}, {result['started']}, "
        f"A = checkout at {result.get('head', '?')}); B answered exactly as A: "
        f"{'yes' if result['same_answers'] else 'NO'}:",
        "",
        "| variant | rate/s | p50 ms | p99 ms | errors | stack CPU ms/req | post | gateway "
        "| notification | user | postgres | other cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        c = r["cpu_ms_per_request"]
        lines.append(
            f"| {r['variant']} | {r['rate']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} "
            f"| {r['stack_cpu_ms_per_request']:.2f} | {c['post']:.2f} | {c['gateway']:.2f} "
            f"| {c['notification']:.2f} | {c['user']:.2f} | {c['postgres']:.2f} "
            f"| {r['other_cores']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--variant", choices=sorted(VARIANTS), default="uvloop")
    choice.add_argument("--baseline", metavar="REV", help="B: the components' code as of REV")
    parser.add_argument("--components", default="gateway,post,user,notification")
    parser.add_argument("--rates", default="100,200")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    stack = ensure_stack()
    population = asyncio.run(seed(stack, scale=args.scale))
    asyncio.run(ensure_fresh_tokens(stack, population, valid_for=900))
    spec = WorkloadSpec(
        mix="read",
        host=f"{stack.host}:{stack.port}",
        users=[(u.user_id, u.access_token) for u in population.users],
        post_ids=population.post_ids,
        edges=population.edges,
    )
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    components = args.components.split(",")
    with tempfile.TemporaryDirectory(prefix="pinstack-ab-") as scratch:
        if args.baseline:
            variant = f"baseline:{args.baseline}"
            flags = baseline_sources(args.baseline, components, Path(scratch))
        else:
            variant, flags = args.variant, dict.fromkeys(components, VARIANTS[args.variant])
        result = compare(
            stack,
            spec,
            variant=variant,
            flags=flags,
            rates=[float(r) for r in args.rates.split(",")],
            seconds=args.seconds,
        )
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    result |= {"started": started, "seconds": args.seconds, "scale": args.scale, "head": head}
    RESULTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "-", variant)  # "baseline:HEAD^" names no file well
    stem = RESULTS / f"ab-{safe}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
