"""Results as JSON and markdown, and the latest table in BENCHMARKS.md.

Only numbers from the run being reported are written: the markdown is rendered from the JSON
that the run produced, and BENCHMARKS.md keeps the table between two markers.
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["machine", "render_markdown", "update_benchmarks_md"]

ROOT = Path(__file__).resolve().parents[1]
MARKERS = "<!-- bench:{kind}:start -->", "<!-- bench:{kind}:end -->"


def _run(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": _run("nproc"),
        "cpu": cpu,
        "free": _run("free", "-m"),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "commit": _run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
    }


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _latency_cells(e: dict[str, Any]) -> list[str]:
    return [_ms(e["p50"]), _ms(e["p90"]), _ms(e["p99"]), _ms(e["p999"])]


def _busiest(window: dict[str, Any]) -> str:
    cpu = {k: v for k, v in window["cpu_cores"].items() if k not in {"generator", "monitor"}}
    name = max(cpu, key=lambda k: cpu[k]) if cpu else "-"
    return f"{name} {cpu.get(name, 0):.2f}"


def _best(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    passing = [s for s in steps if s["passed"]]
    return max(passing, key=lambda s: s["stats"]["target_rate"]) if passing else None


def _header(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    mem = next((ln for ln in m["free"].splitlines() if ln.startswith("Mem:")), "").split()
    total_mem = f"{int(mem[1]) / 1024:.1f} GiB" if len(mem) > 1 else "?"
    seed = result["seed"]
    return [
        f"Run `{result['command']}` ({result['kind']}, {result['seconds']:.0f} s) at "
        f"{result['started']} on commit {m['commit']}: {m['nproc']} cores ({m['cpu']}), "
        f"{total_mem} RAM, Python {m['python']}, Linux {m['kernel']}. Load average at start "
        f"{m['loadavg'][0]:.1f}. Seeded {seed['users']} users, {seed['follows']} follows, "
        f"{seed['posts']} posts.",
    ]


def _knees(result: dict[str, Any]) -> list[str]:
    rows = []
    for mix, knee in result["knees"].items():
        steps = knee["steps"]
        passed = {s["stats"]["target_rate"] for s in steps if s["passed"]}
        failing = next((s for s in steps if s["stats"]["target_rate"] not in passed), None)
        best = _best(steps)
        rows.append(
            [
                mix,
                f"{knee['knee_rate']:.0f}",
                f"{failing['stats']['target_rate']:.0f}/s: {failing['why']}"
                if failing
                else "none (stopped at the last step)",
                f"{best['window']['cpu_cores'].get('generator', 0):.2f}" if best else "n/a",
                f"{best['window']['other_cores']:.2f}" if best else "n/a",
            ]
        )
    header = ["mix", "knee req/s", "first failing step", "generator cores", "other cores"]
    intro = "**Knee** (highest rate with p99 ≤ 50 ms, no errors, ≥ 95% of the target achieved):"
    return ["", intro, "", *_table(header, rows)]


def _at_knee(mix: str, steps: list[dict[str, Any]]) -> list[str]:
    best = _best(steps)
    record = best or steps[0]
    rate = record["stats"]["target_rate"]
    title = (
        f"**{mix} mix at the knee ({rate:.0f}/s)**, latency in ms:"
        if best
        else f"**{mix} mix at its lowest step ({rate:.0f}/s, which did not pass)**, in ms:"
    )
    stats = record["stats"]
    rows = [
        [name, f"{e['throughput']:.1f}", *_latency_cells(e), str(e["errors"])]
        for name, e in [*stats["endpoints"].items(), ("**all**", stats["total"])]
    ]
    header = ["endpoint", "req/s", "p50", "p90", "p99", "p99.9", "errors"]
    return ["", title, "", *_table(header, rows)]


def _floor(result: dict[str, Any]) -> list[str]:
    base = result["baseline"]["stats"]
    t = base["total"]
    return [
        "",
        f"Floor (`GET /healthz`, gateway only, {base['target_rate']:.0f}/s, same run): "
        f"p50 {_ms(t['p50'])} ms, p99 {_ms(t['p99'])} ms, p99.9 {_ms(t['p999'])} ms.",
    ]


def _notify(notify: dict[str, Any]) -> list[str]:
    rows = []
    for key, label in (("websocket_push_ms", "WebSocket push"), ("feed_visible_ms", "feed read")):
        b = notify[key]
        rows.append([label, _ms(b["p50"]), _ms(b["p90"]), _ms(b["p99"]), _ms(b["max"])])
    title = (
        f"**Follow → notification** ({notify['samples']} follows, {notify['failures']} "
        "failures; ms from the follow call returning):"
    )
    return ["", title, "", *_table(["seen via", "p50", "p90", "p99", "max"], rows)]


def _wrk(wrk: dict[str, Any]) -> list[str]:
    rows = []
    for name, row in (("ours (Python, uvloop)", wrk["ours"]), ("wrk 4.1", wrk["wrk"])):
        if not row.get("throughput"):
            rows.append([name, "unavailable", "", "", "", "", "", ""])
            continue
        cpu = f"{row['generator_cpu_cores']:.2f} cores"
        rows.append(
            [name, f"{row['throughput']:.1f}", *_latency_cells(row), str(row["errors"]), cpu]
        )
    title = (
        f"**Second generator** (closed loop, {wrk['connections']} connections, "
        f"{wrk['seconds']} s each, `{wrk['endpoint']}`; latency in ms):"
    )
    header = ["generator", "req/s", "p50", "p90", "p99", "p99.9", "errors", "its CPU"]
    return ["", title, "", *_table(header, rows)]


def _memory(memory: dict[str, float]) -> list[str]:
    title = (
        "**Peak memory** (MiB; VmHWM per process, PostgreSQL: largest sampled PSS sum of its tree):"
    )
    return ["", title, "", *_table(list(memory), [[f"{v:.0f}" for v in memory.values()]])]


def _steps(result: dict[str, Any]) -> list[str]:
    rows = []
    for knee in result["knees"].values():
        for s in knee["steps"]:
            t, w = s["stats"]["total"], s["window"]
            verdict = "pass" if s["passed"] else s["why"]
            rows.append(
                [
                    s["stats"]["mix"],
                    f"{s['stats']['target_rate']:.0f}",
                    f"{t['throughput']:.1f}",
                    _ms(t["p50"]),
                    _ms(t["p99"]),
                    _ms(t["p999"]),
                    str(t["errors"]),
                    _busiest(w),
                    f"{w['cpu_cores'].get('generator', 0):.2f}",
                    f"{s['stats']['send_lag_p99_ms']:.1f}",
                    f"{w['other_cores']:.2f}",
                    verdict + (" (2nd try)" if s.get("attempt", 1) > 1 else ""),
                ]
            )
    header = ["mix", "target/s", "achieved/s", "p50", "p99", "p99.9", "errors"]
    header += ["busiest process", "generator", "send lag p99", "other", "verdict"]
    title = "**Every step** (latency in ms; CPU in cores averaged over the step):"
    return ["", title, "", *_table(header, rows)]


def render_markdown(result: dict[str, Any]) -> str:
    lines = _header(result) + _knees(result)
    for mix, knee in result["knees"].items():
        lines += _at_knee(mix, knee["steps"])
    lines += _floor(result)
    if result.get("notify"):
        lines += _notify(result["notify"])
    if result.get("wrk"):
        lines += _wrk(result["wrk"])
    lines += _memory(result["peak_rss_mb"]) + _steps(result)
    return "\n".join(lines) + "\n"


def update_benchmarks_md(markdown: str, *, kind: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace the ``kind`` run's table between its markers (the prose is left as it is).

    Quick and full runs keep a block each: a two-minute smoke test must not hide the latest
    full measurement.
    """
    start, end = (m.format(kind=kind) for m in MARKERS)
    text = path.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {start} ... {end} block")
    path.write_text(pattern.sub(lambda _: f"{start}\n{markdown}{end}", text))
