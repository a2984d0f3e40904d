"""`buf lint` and `buf breaking` on proto/, with buf built from the Go module proxy (cached).

Usage: python scripts/check_proto.py [--update-baseline]

Breaking changes are judged against `proto/baseline.binpb`, the image of the last released
contracts; `--update-baseline` rewrites it (do that when cutting a release, deliberately).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pinstack_devinfra.gotools import go_install_binary

BUF_VERSION = "v1.75.0"
PROTO = Path(__file__).resolve().parent.parent / "proto"
BASELINE = "baseline.binpb"


def main() -> int:
    buf = str(go_install_binary("github.com/bufbuild/buf/cmd/buf", BUF_VERSION, "buf"))
    if "--update-baseline" in sys.argv:
        subprocess.run([buf, "build", "-o", BASELINE], cwd=PROTO, check=True)  # noqa: S603 - buf is our pinned build, args are literals
        return 0
    for args in (["lint"], ["breaking", "--against", BASELINE]):
        if subprocess.run([buf, *args], cwd=PROTO, check=False).returncode != 0:  # noqa: S603 - buf is our pinned build, args are literals
            print(f"buf {args[0]} failed", file=sys.stderr)  # noqa: T201 - a CLI script's message
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
