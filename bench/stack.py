"""The dev-mode stack under test: where it listens, which pids it has, how it was started.

``pinstack dev up`` records pids and ports in ``$PINSTACK_DATA_DIR/dev/state.json``; reading
that file (rather than looking processes up by name) keeps the numbers ours when other people
run their own stacks and test suites on the same machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COMPONENTS",
    "Stack",
    "ensure_stack",
    "load_stack",
    "pinstack_dev",
    "rate_limits_disabled",
]

COMPONENTS = ("user", "auth", "post", "relation", "notification", "gateway")
INFRA = ("postgres", "redis", "kafka")
RATE_LIMIT_ENV = "PINSTACK_RATE_LIMITS_ENABLED"


@dataclass(frozen=True)
class Stack:
    data_dir: Path
    base_url: str  # http://127.0.0.1:<port>
    host: str
    port: int
    pids: dict[str, int]
    stack_id: str  # the stack's internal token: changes when the data dir is recreated

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"


def data_dir() -> Path:
    return Path(os.environ.get("PINSTACK_DATA_DIR", ".pinstack")).resolve()


def load_stack(directory: Path | None = None) -> Stack | None:
    """The recorded stack if its gateway answers ``/readyz``, else None."""
    root = directory or data_dir()
    try:
        state = json.loads((root / "dev" / "state.json").read_text())
        port = int(state["ports"]["gateway"])
    except (OSError, ValueError, KeyError):
        return None
    base = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=3) as reply:  # noqa: S310 - http
            if reply.status != 200:
                return None
    except (urllib.error.URLError, OSError):
        return None
    pids = {k: int(v) for k, v in state.get("pids", {}).items() if v}
    return Stack(
        data_dir=root,
        base_url=base,
        host="127.0.0.1",
        port=port,
        pids=pids,
        stack_id=str(state.get("internal_token", ""))[:12],
    )


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def rate_limits_disabled(stack: Stack) -> dict[str, bool]:
    """Per component: was it started with ``PINSTACK_RATE_LIMITS_ENABLED=false``?

    Settings are read once at start-up, so the environment of the running process is the
    truth; a stack started without the variable would answer 429s under load.
    """
    result = {}
    for name in COMPONENTS:
        value = environ_of(stack.pids.get(name, 0)).get(RATE_LIMIT_ENV, "true")
        result[name] = value.strip().lower() in {"false", "0", "no", "off"}
    return result


def _recorded_port(directory: Path) -> str | None:
    try:
        return str(json.loads((directory / "dev" / "state.json").read_text())["ports"]["gateway"])
    except (OSError, ValueError, KeyError):
        return None


def pinstack_dev(command: str) -> None:
    """``pinstack dev <command>`` with rate limits off, keeping the gateway's recorded port.

    ``dev up`` takes the gateway port from ``PINSTACK_HTTP_PORT`` (default 8080), not from
    ``state.json``: without this a restart would move a stack started on another port.
    """
    env = dict(os.environ, **{RATE_LIMIT_ENV: "false"})
    port = _recorded_port(data_dir())
    if "PINSTACK_HTTP_PORT" not in env and port is not None:
        env["PINSTACK_HTTP_PORT"] = port
    # The CLI of this virtualenv, run as a module so it works without the console script.
    subprocess.run([sys.executable, "-m", "pinstack_cli", "dev", command], env=env, check=True)


def ensure_stack(*, restart_if_limited: bool = True) -> Stack:
    """A ready stack with rate limits off: adopt the running one, else ``pinstack dev up``.

    ``dev up`` passes its whole environment to the components it spawns, so starting it with
    the variable set is enough. A running stack that has limits on is restarted (data kept).
    """
    stack = load_stack()
    if stack is not None and not all(rate_limits_disabled(stack).values()):
        if not restart_if_limited:
            raise SystemExit(
                f"the running stack has rate limits on; restart it with {RATE_LIMIT_ENV}=false"
            )
        print("==> the running stack has rate limits on: restarting it with them off (data kept)")
        pinstack_dev("down")
        stack = None
    if stack is None:
        print("==> starting the dev stack (pinstack dev up) with rate limits off")
        pinstack_dev("up")
        stack = load_stack()
    if stack is None:
        raise SystemExit("the dev stack did not come up; see $PINSTACK_DATA_DIR/dev/logs/")
    off = rate_limits_disabled(stack)
    if not all(off.values()):
        raise SystemExit(f"rate limits still on in: {[n for n, v in off.items() if not v]}")
    return stack
