"""The ``pinstack`` command: ``up``, ``serve <component>``, ``migrate``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from pinstack_cli.components import SERVICES
from pinstack_cli.dev import dev_app
from pinstack_common.db import migrations
from pinstack_common.lifecycle import Component, run_until_stopped
from pinstack_common.observability import telemetry
from pinstack_common.observability.logging import configure_logging
from pinstack_common.observability.metrics_server import metrics_server
from pinstack_common.settings import ServiceSettings

__all__ = ["app"]

app = typer.Typer(help="Pinstack: a microservice social network.", no_args_is_help=True)
migrate_app = typer.Typer(help="Apply or roll back database migrations.", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")
app.add_typer(dev_app, name="dev")
console = Console(stderr=True)

COMPONENTS = [*SERVICES, "gateway"]


class _ProcessSettings(BaseSettings):
    """What every process needs before its components exist (no secrets: ``up`` makes those)."""

    model_config = SettingsConfigDict(env_prefix="PINSTACK_", extra="ignore")

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    otlp_endpoint: str | None = None


def _log_setup(component: str) -> None:
    settings = _ProcessSettings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, component=component)


def _tracing_setup(service_name: str) -> None:
    # Off unless PINSTACK_OTLP_ENDPOINT is set. Before any component exists: gRPC servers,
    # channels and engines are instrumented as they are created.
    endpoint = _ProcessSettings().otlp_endpoint
    telemetry.configure_tracing(service_name=service_name, otlp_endpoint=endpoint)


def _require_settings() -> ServiceSettings:
    """The shared settings, or a readable error and exit 2 (no traceback) when they are wrong."""
    try:
        return ServiceSettings()
    except ValidationError as invalid:
        for error in invalid.errors():
            field = ".".join(str(part) for part in error["loc"])
            console.print(f"[bold red]invalid setting[/] {field}: {error['msg']}")
        raise typer.Exit(2) from None


@app.command()
def up(
    data_dir: Annotated[
        Path, typer.Option(envvar="PINSTACK_DATA_DIR", help="Where data is kept.")
    ] = Path(".pinstack"),
    http_port: Annotated[int, typer.Option(envvar="PINSTACK_HTTP_PORT")] = 8080,
) -> None:
    """Start every component in one process on embedded PostgreSQL and Redis."""
    from pinstack_cli.embedded import prefer_console_logs, run_embedded

    prefer_console_logs()
    _log_setup("pinstack")
    _tracing_setup("pinstack")
    try:
        run_embedded(data_dir=data_dir.resolve(), http_port=http_port, console=console)
    finally:
        telemetry.shutdown()  # flushes buffered spans


@app.command()
def serve(
    component: Annotated[str, typer.Argument(help=f"One of: {', '.join(COMPONENTS)}")],
) -> None:
    """Run one component (distributed mode); settings come from PINSTACK_* variables."""
    if component not in COMPONENTS:
        raise typer.BadParameter(
            f"unknown component {component!r}; choose from {', '.join(COMPONENTS)}"
        )
    settings = _require_settings()  # e.g. no PINSTACK_INTERNAL_TOKEN: refuse to start
    _log_setup(component)
    _tracing_setup(f"pinstack-{component}")
    built: Component
    if component == "gateway":
        from pinstack_gateway.app import create_component

        built = create_component()
    else:
        spec = SERVICES[component]
        built = spec.component(spec.settings())
    served: list[Component] = [built]
    # The gateway serves /metrics on its HTTP port; a service alone has no HTTP server.
    metrics = None if component == "gateway" else metrics_server(settings)
    if metrics is not None:
        served.insert(0, metrics)
    try:
        asyncio.run(run_until_stopped(served))
    finally:
        telemetry.shutdown()


def _targets(service: str | None) -> list[str]:
    if service is None:
        return list(SERVICES)
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; choose from {', '.join(SERVICES)}")
    return [service]


def _database_url(name: str) -> str:
    """``PINSTACK_<SERVICE>_DATABASE_URL``, falling back to ``PINSTACK_DATABASE_URL``."""
    url = os.environ.get(f"PINSTACK_{name.upper()}_DATABASE_URL") or os.environ.get(
        "PINSTACK_DATABASE_URL"
    )
    if not url:
        raise typer.BadParameter(
            f"set PINSTACK_{name.upper()}_DATABASE_URL (or PINSTACK_DATABASE_URL) to migrate {name}"
        )
    return url


ServiceOption = Annotated[str | None, typer.Option("--service", "-s", help="Only this service.")]


@migrate_app.command("up")
def migrate_up(service: ServiceOption = None) -> None:
    """Upgrade to this image's newest schema; a newer release's schema is left as it is."""
    for name in _targets(service):
        try:
            status = migrations.upgrade(package=SERVICES[name].package, url=_database_url(name))
        except migrations.SchemaMismatchError as mismatch:
            console.log(f"{name}: cannot migrate: {mismatch}")
            raise typer.Exit(1) from None
        if status is not None and status.state is migrations.SchemaState.AHEAD:
            console.log(f"{name}: {status.message}; nothing to do")
        else:
            console.log(f"{name}: migrated to head")


@migrate_app.command("down")
def migrate_down(service: ServiceOption = None) -> None:
    """Roll back one migration."""
    for name in reversed(_targets(service)):
        migrations.downgrade(package=SERVICES[name].package, url=_database_url(name))
        console.log(f"{name}: rolled back one step")


@migrate_app.command("check")
def migrate_check(service: ServiceOption = None) -> None:
    """Exit non-zero unless every schema is at this image's head or a newer release's descendant
    of it (a readiness gate that lets a rolled-back image start)."""
    failed = []
    for name in _targets(service):
        package = SERVICES[name].package
        status = asyncio.run(migrations.schema_status(package=package, url=_database_url(name)))
        if status.compatible:
            console.log(f"{name}: {status.message}")
        else:
            failed.append(f"{name}: {status.message}")
    if failed:
        console.log("not migrated: " + "; ".join(failed))
        raise typer.Exit(1)
