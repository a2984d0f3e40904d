"""``pinstack up``: every component in one process on embedded PostgreSQL and Redis.

Each service still runs its own gRPC server on loopback and the gateway still calls them over
gRPC, so embedded mode exercises the same code paths as the distributed modes; only the adapters
chosen here differ (embedded servers, the in-process event bus).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from pinstack_cli.components import SERVICES
from pinstack_common.db import migrations
from pinstack_common.events import InProcessTransport
from pinstack_common.lifecycle import Component, start_all, stop_all
from pinstack_common.observability.telemetry import traced_transport
from pinstack_devinfra.ports import free_port
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer
from pinstack_gateway.app import create_component as create_gateway
from pinstack_gateway.settings import GatewaySettings

__all__ = [
    "INTERNAL_TOKEN_FILE",
    "EmbeddedStack",
    "internal_token",
    "prefer_console_logs",
    "run_embedded",
]

INTERNAL_TOKEN_FILE = "internal-token"  # noqa: S105 - a file name, not a secret


def internal_token(data_dir: Path) -> str:
    """This data directory's internal-RPC token: made once (random, mode 0600), then reused.

    A fixed token would let any local process call the internal RPCs of anyone's stack.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / INTERNAL_TOKEN_FILE
    for _ in range(3):
        try:
            with path.open() as existing:
                os.fchmod(existing.fileno(), 0o600)  # an older or copied file: tighten it
                token = existing.read().strip()
        except FileNotFoundError:
            token = ""
        if token:
            return token
        # Write a complete file under a private name, then link it into place: a concurrent
        # start either wins the link or reads the winner's token, never a half-written file.
        tmp = data_dir / f".{INTERNAL_TOKEN_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        try:
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size == 0:
                    path.unlink()  # an empty file (a crash mid-write of an older version)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    raise RuntimeError(f"cannot create the internal token in {path}")


def prefer_console_logs() -> None:
    """``up`` runs in a terminal: readable log lines unless the environment asks for JSON."""
    os.environ.setdefault("PINSTACK_LOG_FORMAT", "console")


class _DeliveryGate:
    """Opens the bus once every service (and so every consumer) started; closes it first thing
    at shutdown (after the gateway), so relays waiting on stopped consumers give up at once."""

    name = "event-delivery-gate"

    def __init__(self, bus: InProcessTransport) -> None:
        self._bus = bus

    async def start(self) -> None:
        self._bus.open()

    async def stop(self) -> None:
        self._bus.close()


@dataclass
class EmbeddedStack:
    """Infrastructure plus components for one process; usable from tests as well as ``up``."""

    data_dir: Path
    http_port: int = 8080
    console: Console = field(default_factory=lambda: Console(stderr=True))
    extra_settings: dict[str, Any] = field(default_factory=dict)
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    components: list[Component] = field(default_factory=list)
    # Called between start-up steps; ``up`` makes it raise once a stop was asked for.
    checkpoint: Callable[[], None] = field(default=lambda: None)

    def prepare(self) -> None:
        """Start PostgreSQL and Redis (unless given by URL), create databases, migrate."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("PINSTACK_INTERNAL_TOKEN"):  # the environment wins, as always
            self.extra_settings.setdefault("internal_token", internal_token(self.data_dir))
        with self.console.status("starting embedded PostgreSQL"):
            self.postgres = PostgresServer(data_dir=self.data_dir / "postgres")
            self.postgres.start()
        self.checkpoint()
        self.console.log(f"PostgreSQL ready ({self.data_dir / 'postgres'})")
        redis_url = os.environ.get("PINSTACK_REDIS_URL")
        if redis_url is None:
            with self.console.status("starting embedded Redis"):
                self.redis = RedisServer(data_dir=self.data_dir / "redis")
                self.redis.start()
            self.checkpoint()
            redis_url = self.redis.url
        self.console.log(f"Redis ready ({redis_url})")
        self.extra_settings.setdefault("redis_url", redis_url)
        for spec in SERVICES.values():
            with self.console.status(f"migrating {spec.name}"):
                self.postgres.ensure_database(spec.database)
                migrations.upgrade(package=spec.package, url=self.postgres.url(spec.database))
            self.checkpoint()
        self.console.log(f"schemas migrated: {', '.join(SERVICES)}")

    def build(self) -> list[Component]:
        if self.postgres is None:
            raise RuntimeError("prepare() first")
        addresses = {spec.addr_setting: f"127.0.0.1:{free_port()}" for spec in SERVICES.values()}
        common = {**addresses, **self.extra_settings, "event_transport": "inprocess"}
        # One bus for the whole process, started first and stopped last. It keeps nothing across
        # a crash, so it acknowledges a publish only once every group handled it (the outbox
        # holds the event until then), and only after every consumer subscribed: the gate.
        bus = InProcessTransport(ack_when_handled=True)
        traced = traced_transport(bus)
        self.components.append(traced)
        for spec in SERVICES.values():
            port = int(addresses[spec.addr_setting].rsplit(":", 1)[1])
            settings = spec.settings(
                **common, database_url=self.postgres.url(spec.database), grpc_port=port
            )
            self.components.append(spec.component(settings, transport=traced))
        self.components.append(_DeliveryGate(bus))
        gateway = GatewaySettings(**common, http_port=self.http_port)
        self.components.append(create_gateway(gateway))
        return self.components

    def shutdown(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    """SIGINT/SIGTERM arrived while ``up`` was still starting its infrastructure."""


class _Signals:
    """One handler for SIGINT, SIGTERM (and SIGHUP unless ignored) for the whole of ``up``.

    Installed with ``signal.signal`` before anything starts and kept until everything stopped,
    so no phase falls back to the default action (which, for SIGTERM, killed the process and
    left PostgreSQL and Redis running). SIGINT is caught even when a shell that started ``up``
    in the background set it to ignored. While starting, a stop is taken at the next step;
    while running, it wakes the event loop; while stopping, further signals are ignored.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.requested: str | None = None
        self.stopping = False
        self._wake: Callable[[], None] | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # nohup: a hangup is meant not to stop it
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stopping or self.requested is not None:
            self.console.log(f"{name}: already stopping")
            return
        self.requested = name
        self.console.log(f"{name}: stopping")
        if self._wake is not None:
            self._wake()

    def checkpoint(self) -> None:
        if self.requested is not None:
            raise StopRequested(self.requested)

    def wake_on_request(self, wake: Callable[[], None] | None) -> None:
        self._wake = wake
        if wake is not None and self.requested is not None:
            wake()


def run_embedded(*, data_dir: Path, http_port: int, console: Console) -> None:
    signals = _Signals(console)
    signals.install()
    stack = EmbeddedStack(
        data_dir=data_dir, http_port=http_port, console=console, checkpoint=signals.checkpoint
    )
    try:
        stack.prepare()
        components = stack.build()

        def announce() -> None:
            console.rule("[bold green]Pinstack is up")
            console.print(f"  API        http://127.0.0.1:{http_port}/api/v1")
            console.print(f"  Swagger UI http://127.0.0.1:{http_port}/swagger/index.html")
            console.print(f"  Ready      http://127.0.0.1:{http_port}/readyz")
            console.print(f"  Metrics    http://127.0.0.1:{http_port}/metrics")
            console.print(f"  Data       {data_dir}")
            console.print("  Ctrl-C (or SIGTERM) stops it; data is kept.")

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()

            def wake() -> None:
                loop.call_soon_threadsafe(stop.set)

            signals.wake_on_request(wake)
            started = await start_all(components)  # a signal meanwhile: stop right after
            try:
                if not stop.is_set():
                    announce()
                await stop.wait()
            finally:
                signals.stopping = True
                signals.wake_on_request(None)
                await stop_all(started)

        asyncio.run(main())
    except StopRequested:
        pass  # asked to stop while starting: stop what was started, below
    finally:
        signals.stopping = True
        try:
            stack.shutdown()
        finally:
            signals.restore()
        console.log("stopped")
