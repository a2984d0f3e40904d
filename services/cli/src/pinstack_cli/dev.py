"""``pinstack dev up|down|status``: the distributed mode on one machine (see
:mod:`pinstack_cli.devstack`).

``main`` imports this module for every command, so the stack itself (and pinstack_devinfra with
it) is imported only inside the commands: ``serve`` and ``migrate`` in a pod must not load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["dev_app"]

dev_app = typer.Typer(help="Distributed mode on one machine (real PostgreSQL, Redis, Kafka).")

DataDirOption = Annotated[
    Path, typer.Option(envvar="PINSTACK_DATA_DIR", help="Where data is kept (dev/ inside).")
]


@dev_app.command("up")
def up_command(
    data_dir: DataDirOption = Path(".pinstack"),
    http_port: Annotated[
        int | None,
        typer.Option(
            envvar="PINSTACK_HTTP_PORT", help="Gateway port (default: last one, or 8080)."
        ),
    ] = None,
    ephemeral_ports: Annotated[
        bool,
        typer.Option(
            envvar="PINSTACK_DEV_EPHEMERAL_PORTS",
            help="Pick free ports instead of the defaults (tests running side by side).",
        ),
    ] = False,
) -> None:
    """Start real PostgreSQL, Redis, Kafka and one process per component."""
    from pinstack_cli.devstack import dev_up

    dev_up(data_dir=data_dir, http_port=http_port, ephemeral_ports=ephemeral_ports)


@dev_app.command("down")
def down_command(data_dir: DataDirOption = Path(".pinstack")) -> None:
    """Stop what ``dev up`` started; the data is kept."""
    from pinstack_cli.devstack import dev_down

    dev_down(data_dir=data_dir)


@dev_app.command("status")
def status_command(data_dir: DataDirOption = Path(".pinstack")) -> None:
    """Show which processes of the dev stack run, with their pids and ports."""
    from pinstack_cli.devstack import dev_status

    dev_status(data_dir=data_dir)
