"""``pinstack up`` stops whatever it started on SIGINT and SIGTERM sent to its process alone.

A process manager or ``timeout`` signals the process, not the terminal's process group, so
PostgreSQL and Redis do not get the signal themselves: ``up`` must stop them. Each test runs the
real command in its own data directory on free ports and looks for leftovers in ``/proc``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from pinstack_devinfra.procs import alive
from tests.integration.embedded_process import Up, assert_infra_gone, data_dir, infra_pids

__all__ = ["data_dir"]  # the fixture, imported for pytest

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize(
    ("sig", "ignore_sigint"),
    [
        pytest.param(signal.SIGTERM, False, id="SIGTERM"),
        pytest.param(signal.SIGINT, False, id="SIGINT"),
        pytest.param(signal.SIGINT, True, id="SIGINT-ignored-by-parent"),
    ],
)
def test_a_signal_to_the_process_stops_postgres_and_redis(
    data_dir: Path, sig: signal.Signals, ignore_sigint: bool
) -> None:
    up = Up(data_dir, ignore_sigint=ignore_sigint)
    up.wait_serving()
    assert infra_pids(data_dir), "expected PostgreSQL and Redis processes for the data dir"
    up.send(sig)
    assert up.wait_exit() == 0, up.output()
    assert_infra_gone(data_dir, up.output())
    token = data_dir / "internal-token"
    assert token.stat().st_mode & 0o777 == 0o600


def test_sigterm_while_still_starting_stops_what_was_started(data_dir: Path) -> None:
    up = Up(data_dir)
    pidfile = data_dir / "postgres" / "postmaster.pid"

    def postgres_up() -> bool:
        try:
            return alive(int(pidfile.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            return False

    up.wait_until(postgres_up, "PostgreSQL")
    up.send(signal.SIGTERM)
    up.wait_exit()
    assert_infra_gone(data_dir, up.output())


def test_servers_left_by_a_killed_run_are_stopped_by_the_next_one(data_dir: Path) -> None:
    first = Up(data_dir)
    first.wait_serving()
    first.send(signal.SIGKILL)
    first.wait_exit()
    assert infra_pids(data_dir), "a killed run leaves its servers: the case under test"
    second = Up(data_dir)
    second.wait_serving()
    second.send(signal.SIGTERM)
    assert second.wait_exit() == 0, second.output()
    assert_infra_gone(data_dir, first.output() + second.output())
