"""``pinstack up`` killed with SIGKILL during a burst of follows loses no acknowledged event.

The in-process bus keeps records in memory only; before the fix the relay marked an outbox row
published as soon as the bus held it, and a crash before the notification consumer ran lost the
notification for good. The real process is killed, not a simulation of it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.follow_burst import assert_delivered_once, follow_burst, register
from tests.integration.embedded_process import STOP_TIMEOUT, Up, assert_infra_gone, data_dir

__all__ = ["data_dir"]  # the fixture, imported for pytest

pytestmark = pytest.mark.timeout(900)


def test_kill_9_during_a_follow_burst_loses_no_acknowledged_notification(
    data_dir: Path,
) -> None:
    first = Up(data_dir)
    first.wait_serving()
    base_url = f"http://127.0.0.1:{first.port}"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        star = register(client)
        followers = [register(client) for _ in range(40)]

    acknowledged = follow_burst(
        base_url, followers, star, kill_after=15, kill=lambda: first.send(signal.SIGKILL)
    )
    first.process.wait(timeout=STOP_TIMEOUT)

    second = Up(data_dir)  # adopts the servers the killed run left, replays its outbox
    second.wait_serving()
    assert_delivered_once(f"http://127.0.0.1:{second.port}", star, acknowledged)
    second.send(signal.SIGTERM)
    assert second.wait_exit() == 0, second.output()
    assert_infra_gone(data_dir, first.output() + second.output())
