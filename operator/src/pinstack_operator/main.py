"""``pinstack-operator``: run the PinstackStack operator (kopf, one replica, ``--standalone``)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf

from pinstack_operator.conditions import Clock, system_clock
from pinstack_operator.config import OperatorConfig
from pinstack_operator.handlers import build_registry

__all__ = ["main", "run_operator"]


async def run_operator(
    *,
    config: OperatorConfig,
    clock: Clock = system_clock,
    stop_flag: asyncio.Future[Any] | threading.Event | None = None,
    ready_flag: asyncio.Future[Any] | threading.Event | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or a signal arrives when run from ``main``)."""
    await kopf.operator(
        registry=build_registry(config=config, clock=clock),
        standalone=True,
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=config.liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def main() -> None:
    config = OperatorConfig.from_env()
    kopf.configure(verbose=config.verbose, log_format=kopf.LogFormat.FULL)
    asyncio.run(run_operator(config=config))


if __name__ == "__main__":
    main()
