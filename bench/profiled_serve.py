"""``pinstack serve <component>`` under cProfile, switched on and off by signals.

    python bench/profiled_serve.py <component> <out.prof>

SIGUSR1 starts profiling, SIGUSR2 stops it, and the stats are written when the process ends:
start-up (imports alone are two CPU seconds) must not drown the requests being studied. The
timer is the process's CPU clock, not the wall clock: on a shared 2-core machine a process
waits for a core a good part of the time, and that waiting would be charged to whatever
function happened to be running.
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time
from types import FrameType


def main() -> None:
    component, out = sys.argv[1], sys.argv[2]
    profiler = cProfile.Profile(time.process_time)

    def switch(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            profiler.enable()
        else:
            profiler.disable()

    signal.signal(signal.SIGUSR1, switch)
    signal.signal(signal.SIGUSR2, switch)
    from pinstack_cli.main import app

    try:
        app(["serve", component], standalone_mode=False)
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
