"""``pinstack serve <component>`` with a twist, for profiling and A/B runs.

    python bench/serve_variant.py <component> [--profile OUT] [--uvloop] [--source DIR]

``--profile OUT``: cProfile, switched on by SIGUSR1 and off by SIGUSR2, the stats written to OUT
when the process ends; start-up (two CPU seconds of imports) must not drown the requests being
studied. The timer is the process's CPU clock, not the wall clock: on a shared 2-core machine a
process waits for a core a good part of the time, and that waiting would be charged to whatever
function happened to be running.

``--uvloop``: the same code on uvloop's event loop instead of asyncio's (``pinstack serve``
uses ``asyncio.run``), to measure what the loop costs.

``--source DIR``: import the component's package from DIR (e.g. ``services/post/src`` of an older
revision, extracted by ``ab.py --baseline``) instead of the checkout. The workspace installs its
members as ``.pth`` path entries, so a directory put first on ``sys.path`` wins; everything else
(common, contracts, dependencies) stays the checkout's, so only that package differs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
import sys
import time
from types import FrameType


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("component")
    parser.add_argument("--profile", metavar="OUT")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--source", action="append", default=[], metavar="DIR")
    args = parser.parse_args()
    profiler = cProfile.Profile(time.process_time)

    def switch(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            profiler.enable()
        else:
            profiler.disable()

    if args.profile:
        signal.signal(signal.SIGUSR1, switch)
        signal.signal(signal.SIGUSR2, switch)
    if args.uvloop:
        import uvloop

        # asyncio.run takes its loop from the policy: every component gets uvloop unchanged.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    for directory in reversed(args.source):
        sys.path.insert(0, directory)
    from pinstack_cli.main import app

    try:
        app(["serve", args.component], standalone_mode=False)
    finally:
        if args.profile:
            profiler.disable()
            profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
