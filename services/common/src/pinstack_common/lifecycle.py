"""Start components in order, stop them in reverse, on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

__all__ = ["Component", "run_until_stopped", "start_all", "stop_all"]

log = structlog.get_logger(__name__)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def start_all(components: Sequence[Component]) -> list[Component]:
    """Start each in order; on failure, stop the ones already started and re-raise."""
    started: list[Component] = []
    try:
        for component in components:
            await component.start()
            started.append(component)
    except BaseException:
        await stop_all(started)
        raise
    return started


async def stop_all(started: Sequence[Component]) -> None:
    for component in reversed(started):
        try:
            await component.stop()
        except Exception:
            log.exception("stop failed", component=component.name)


async def run_until_stopped(
    components: Sequence[Component],
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = await start_all(components)
    if on_started is not None:
        on_started()
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        # The handlers stay through the drain: a second SIGTERM (a process manager repeating
        # itself, a rolling update) must not kill the process halfway through stop_all.
        try:
            await stop_all(started)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
