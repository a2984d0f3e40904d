"""The one way a test waits: poll a condition until it holds or a deadline passes.

Nothing in the suite sleeps for a fixed while hoping something happened meanwhile; it names the
condition and polls for it here. The pause between attempts is the only sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar, overload

__all__ = ["eventually", "wait_until"]

T = TypeVar("T")

INTERVAL = 0.05


Description = str | Callable[[], str]  # a callable describes the state at the deadline


class _Deadline:
    def __init__(self, *, within: float, what: Description) -> None:
        self.within = within
        self.what = what
        self.end = time.monotonic() + within

    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def fail(self, last: object) -> NoReturn:
        what = self.what() if callable(self.what) else self.what
        raise AssertionError(
            f"timed out after {self.within}s waiting for {what}; last value: {last!r}"
        )


@overload
async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float = ...,
    what: Description = ...,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T | None],
    *,
    within: float = ...,
    what: Description = ...,
    interval: float = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], object],
    *,
    within: float = 45.0,
    what: Description = "the condition",
    interval: float = INTERVAL,
) -> object:
    """Call ``probe`` (plain or async) until it returns something truthy, and return that
    (typed without the ``None`` a probe returns for "not yet").

    An exception from ``probe`` is not "not yet": it fails the wait at once, so a probe can
    assert what must never happen while waiting (a process that exited, a 500).
    """
    deadline = _Deadline(within=within, what=what)
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if deadline.passed():
            deadline.fail(last)
        await asyncio.sleep(interval)


def wait_until(
    probe: Callable[[], T | None],
    *,
    within: float = 45.0,
    what: Description = "the condition",
    interval: float = INTERVAL,
) -> T:
    """:func:`eventually` for synchronous code (subprocess and HTTP clients outside a loop)."""
    deadline = _Deadline(within=within, what=what)
    while True:
        last = probe()
        if last:
            return last
        if deadline.passed():
            deadline.fail(last)
        time.sleep(interval)
