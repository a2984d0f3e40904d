"""The password hasher's bounded concurrency and queue (no timing: hashes are held by a gate)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pinstack_auth.passwords import PasswordHasher
from pinstack_common.errors import RateLimitedError
from tests.polling import eventually

CHEAP = {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}


async def test_a_full_queue_is_refused_at_once_and_recovers(
    argon2_gate: tuple[threading.Event, list[str]],
) -> None:
    opened, entered = argon2_gate
    hasher = PasswordHasher(**CHEAP, max_concurrent=1, max_queued=1, queue_timeout_seconds=60)
    running = asyncio.create_task(hasher.hash("first-password"))
    await eventually(lambda: entered == ["first-password"])
    queued = asyncio.create_task(hasher.hash("second-password"))
    await eventually(lambda: hasher.admitted == 2)
    with pytest.raises(RateLimitedError) as refused:
        await hasher.hash("third-password")
    assert (refused.value.message, refused.value.retry_after) == ("too many requests", 1)
    assert "third-password" not in entered
    opened.set()
    await asyncio.gather(running, queued)
    assert entered == ["first-password", "second-password"]
    assert hasher.admitted == 0
    await hasher.hash("fourth-password")


async def test_waiting_too_long_for_a_slot_is_refused(
    argon2_gate: tuple[threading.Event, list[str]],
) -> None:
    opened, entered = argon2_gate
    hasher = PasswordHasher(**CHEAP, max_concurrent=1, max_queued=4, queue_timeout_seconds=0.05)
    running = asyncio.create_task(hasher.hash("first-password"))
    await eventually(lambda: entered == ["first-password"])
    with pytest.raises(RateLimitedError):
        await hasher.hash("second-password")
    assert entered == ["first-password"]
    opened.set()
    await running


async def test_an_abandoned_hash_keeps_its_slot_until_it_is_done(
    argon2_gate: tuple[threading.Event, list[str]],
) -> None:
    opened, entered = argon2_gate
    hasher = PasswordHasher(**CHEAP, max_concurrent=1, max_queued=1, queue_timeout_seconds=60)
    abandoned = asyncio.create_task(hasher.hash("first-password"))
    await eventually(lambda: entered == ["first-password"])
    abandoned.cancel()
    waiting = asyncio.create_task(hasher.hash("second-password"))
    await eventually(lambda: hasher.admitted == 1 and abandoned.done())
    assert entered == ["first-password"]  # the thread still runs: no second hash started
    opened.set()
    await waiting
    assert entered == ["first-password", "second-password"]
