"""``pinstack dev up``: the producing and the consuming service killed with SIGKILL during a
burst of follows lose no acknowledged event and notify nobody twice.

relation (outbox + relay) and notification (consumer) die at the same moment, with follows in
flight; ``dev up`` then restarts exactly the dead ones. The relay republishes what it had not
marked, the consumer group resumes from its last committed offset, and the consumer's dedupe
turns the replays into one notification each. Real processes, real Kafka, a real SIGKILL.
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from tests.follow_burst import assert_delivered_once, follow_burst, register
from tests.kafka.dev_process import DevStack, dev_stack

__all__ = ["dev_stack"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


def test_kill_9_of_producer_and_consumer_loses_no_acknowledged_notification(
    dev_stack: DevStack,
) -> None:
    dev_stack.run("up")
    pids = dev_stack.pids()
    with httpx.Client(base_url=dev_stack.url, timeout=30) as client:
        star = register(client)
        followers = [register(client) for _ in range(40)]

    def kill() -> None:
        for name in ("relation", "notification"):
            os.kill(pids[name], signal.SIGKILL)

    acknowledged = follow_burst(dev_stack.url, followers, star, kill_after=15, kill=kill)
    dev_stack.run("up")  # restarts the two dead components, nothing else
    restarted = dev_stack.pids()
    assert restarted["relation"] != pids["relation"]
    assert restarted["gateway"] == pids["gateway"]
    assert_delivered_once(dev_stack.url, star, acknowledged)
