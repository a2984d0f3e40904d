"""A second SIGTERM during the drain does not kill a process run by ``run_until_stopped``."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO

SCRIPT = textwrap.dedent(
    """
    import asyncio, pathlib, sys
    from pinstack_common.lifecycle import run_until_stopped

    release = pathlib.Path(sys.argv[1])

    class SlowToStop:
        name = "slow"
        async def start(self): print("started", flush=True)
        async def stop(self):
            print("stopping", flush=True)
            while not release.exists():
                await asyncio.sleep(0.01)
            print("stopped", flush=True)

    asyncio.run(run_until_stopped([SlowToStop()]))
    """
)


def _read_until(stream: IO[str], wanted: str) -> None:
    """Skip log lines up to ``wanted`` (EOF first means the process died)."""
    for line in stream:
        if line.strip() == wanted:
            return
    raise AssertionError(f"the process ended before printing {wanted!r}")


def test_a_second_sigterm_during_the_drain_lets_it_finish(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with subprocess.Popen(  # the with block closes the stdout pipe, not the garbage collector
        [sys.executable, "-c", SCRIPT, str(release)], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            _read_until(process.stdout, "started")
            process.send_signal(signal.SIGTERM)
            _read_until(process.stdout, "stopping")
            process.send_signal(signal.SIGTERM)  # before the fix: the default action, death
            release.touch()
            _read_until(process.stdout, "stopped")
            assert process.wait(timeout=60) == 0
        finally:
            process.kill()
            process.wait()
