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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from pinstack_cli.components import SERVICES
from pinstack_common import migrations
from pinstack_common.events import InProcessTransport
from pinstack_common.lifecycle import Component, run_until_stopped
from pinstack_common.telemetry import traced_transport
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer, free_port
from pinstack_gateway.app import create_component as create_gateway
from pinstack_gateway.settings import GatewaySettings

__all__ = ["INTERNAL_TOKEN_FILE", "EmbeddedStack", "internal_token", "run_embedded"]

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

    def prepare(self) -> None:
        """Start PostgreSQL and Redis (unless given by URL), create databases, migrate."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("PINSTACK_INTERNAL_TOKEN"):  # the environment wins, as always
            self.extra_settings.setdefault("internal_token", internal_token(self.data_dir))
        with self.console.status("starting embedded PostgreSQL"):
            self.postgres = PostgresServer(data_dir=self.data_dir / "postgres")
            self.postgres.start()
        self.console.log(f"PostgreSQL ready ({self.data_dir / 'postgres'})")
        redis_url = os.environ.get("PINSTACK_REDIS_URL")
        if redis_url is None:
            with self.console.status("starting embedded Redis"):
                self.redis = RedisServer(data_dir=self.data_dir / "redis")
                self.redis.start()
            redis_url = self.redis.url
        self.console.log(f"Redis ready ({redis_url})")
        self.extra_settings.setdefault("redis_url", redis_url)
        for spec in SERVICES.values():
            with self.console.status(f"migrating {spec.name}"):
                self.postgres.ensure_database(spec.database)
                migrations.upgrade(package=spec.package, url=self.postgres.url(spec.database))
        self.console.log(f"schemas migrated: {', '.join(SERVICES)}")

    def build(self) -> list[Component]:
        if self.postgres is None:
            raise RuntimeError("prepare() first")
        addresses = {spec.addr_setting: f"127.0.0.1:{free_port()}" for spec in SERVICES.values()}
        common = {**addresses, **self.extra_settings, "event_transport": "inprocess"}
        # One bus for the whole process, started first and stopped last.
        bus = traced_transport(InProcessTransport())
        self.components.append(bus)
        for spec in SERVICES.values():
            port = int(addresses[spec.addr_setting].rsplit(":", 1)[1])
            settings = spec.settings(
                **common, database_url=self.postgres.url(spec.database), grpc_port=port
            )
            self.components.append(spec.component(settings, transport=bus))
        gateway = GatewaySettings(**common, http_port=self.http_port)
        self.components.append(create_gateway(gateway))
        return self.components

    def shutdown(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def run_embedded(*, data_dir: Path, http_port: int, console: Console) -> None:
    stack = EmbeddedStack(data_dir=data_dir, http_port=http_port, console=console)
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
            console.print("  Ctrl-C stops it; data is kept.")

        async def main() -> None:
            await run_until_stopped(components, on_started=announce)

        asyncio.run(main())
    finally:
        stack.shutdown()
        console.log("stopped")
