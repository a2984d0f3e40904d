"""``pinstack-operator``: run the PinstackStack operator (kopf ``--standalone``; with leader
election, only in the replica holding the Lease)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import kopf

from pinstack_operator.conditions import Clock, system_clock
from pinstack_operator.config import OperatorConfig
from pinstack_operator.handlers import build_registry
from pinstack_operator.kubeapi import connect, load_configuration
from pinstack_operator.leadership import LeaseElector
from pinstack_operator.metrics import HealthServer, OperatorMetrics
from pinstack_operator.rbac import PERMISSIONS

__all__ = ["main", "run_operator"]

logger = logging.getLogger(__name__)

Flag = asyncio.Future[Any] | threading.Event
_BEAT_SECONDS = 5.0
_STALLED_SECONDS = 60.0


async def _until(flag: Flag | None) -> None:
    """Return once ``flag`` is set (never, for None)."""
    if flag is None:
        await asyncio.Event().wait()
    elif isinstance(flag, threading.Event):
        while not await asyncio.to_thread(flag.wait, 0.5):
            pass
    else:
        await asyncio.shield(flag)


@contextlib.asynccontextmanager
async def _served(config: OperatorConfig, metrics: OperatorMetrics) -> AsyncIterator[None]:
    """``/metrics`` and ``/healthz`` while the operator runs (leading or waiting)."""
    if not config.metrics_port:
        yield
        return
    beat = [time.monotonic()]

    async def heartbeat() -> None:
        while True:
            beat[0] = time.monotonic()
            await asyncio.sleep(_BEAT_SECONDS)

    server = HealthServer(
        host=config.metrics_host,
        port=config.metrics_port,
        registry=metrics.registry,
        healthy=lambda: time.monotonic() - beat[0] < _STALLED_SECONDS,
    )
    server.start()
    beating = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        beating.cancel()
        await asyncio.to_thread(server.stop)


@dataclass(frozen=True, kw_only=True)
class _Run:
    """One run of the operator: kopf alone, or kopf while holding the leader Lease."""

    config: OperatorConfig
    clock: Clock
    metrics: OperatorMetrics
    stop_flag: Flag | None
    ready_flag: Flag | None

    async def kopf(self, stop_flag: Flag | None) -> None:
        """kopf until ``stop_flag``; ``pinstack_operator_leader`` is 1 meanwhile (this replica
        acts: it holds the Lease, or there is no leader election)."""
        self.metrics.leader.set(1)
        try:
            await self._kopf(stop_flag)
        finally:
            self.metrics.leader.set(0)

    async def _kopf(self, stop_flag: Flag | None) -> None:
        await kopf.operator(
            registry=build_registry(config=self.config, clock=self.clock, metrics=self.metrics),
            standalone=True,
            clusterwide=not self.config.namespaces,
            namespaces=self.config.namespaces,
            stop_flag=stop_flag,
            ready_flag=self.ready_flag,
        )

    async def leading(self) -> None:
        """Wait for the Lease, run kopf while holding it; a lost Lease stops kopf and raises
        (the process exits, and its pod restarts as a candidate)."""
        api = connect(
            await load_configuration(kubeconfig=self.config.kubeconfig), permissions=PERMISSIONS
        )
        elector = LeaseElector(
            api=api,
            namespace=self.config.lease_namespace,
            name=self.config.lease_name,
            identity=self.config.identity,
            lease_seconds=self.config.lease_seconds,
            clock=self.clock,
        )
        stopping = asyncio.create_task(_until(self.stop_flag))
        acquiring = asyncio.create_task(elector.acquire())
        tasks: list[asyncio.Task[Any]] = [stopping, acquiring]
        try:
            await asyncio.wait({stopping, acquiring}, return_when=asyncio.FIRST_COMPLETED)
            if not acquiring.done():
                return
            kopf_stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            operator = asyncio.create_task(self.kopf(kopf_stop))
            holding = asyncio.create_task(elector.hold())
            tasks += [operator, holding]
            await asyncio.wait({stopping, operator, holding}, return_when=asyncio.FIRST_COMPLETED)
            if not kopf_stop.done():
                kopf_stop.set_result(None)
            await operator
            if holding.done():
                holding.result()  # LeadershipLostError: stopped acting, now exit
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.metrics.forget_stacks()
            await elector.release()
            await api.close()


async def run_operator(
    *,
    config: OperatorConfig,
    clock: Clock = system_clock,
    metrics: OperatorMetrics | None = None,
    stop_flag: Flag | None = None,
    ready_flag: Flag | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or a signal arrives when run from ``main``).

    ``ready_flag`` is set once kopf runs: at once without leader election, else once this
    replica leads."""
    metrics = metrics or OperatorMetrics()
    run = _Run(config=config, clock=clock, metrics=metrics, stop_flag=stop_flag,
               ready_flag=ready_flag)  # fmt: skip
    async with _served(config, metrics):
        await (run.leading() if config.leader_election else run.kopf(stop_flag))


def main() -> None:
    config = OperatorConfig.from_env()
    kopf.configure(verbose=config.verbose, log_format=kopf.LogFormat.FULL)
    asyncio.run(run_operator(config=config))


if __name__ == "__main__":
    main()
