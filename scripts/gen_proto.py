"""Regenerate the committed protobuf/gRPC code (with mypy stubs) from proto/.

Usage: python scripts/gen_proto.py [--check]

--check regenerates into a scratch directory and fails when the committed code differs,
so CI notices a .proto change that was not followed by `make proto`.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT = ROOT / "services" / "contracts" / "src"
PACKAGE_DOC = '"""Generated Pinstack contracts (do not edit; regenerate with `make proto`)."""\n'


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for directory in [out / "pinstack", *(p for p in (out / "pinstack").rglob("*") if p.is_dir())]:
        init = directory / "__init__.py"
        init.write_text(PACKAGE_DOC if directory == out / "pinstack" else "")
    (out / "pinstack" / "py.typed").write_text("")


def tree(base: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(base)): p
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def main() -> int:
    if "--check" not in sys.argv:
        shutil.rmtree(OUT / "pinstack", ignore_errors=True)
        (OUT / "pinstack").mkdir(parents=True)
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch)
        (fresh / "pinstack").mkdir()
        generate(fresh)
        want, have = tree(fresh / "pinstack"), tree(OUT / "pinstack")
        stale = sorted(
            name
            for name in want.keys() | have.keys()
            if name not in want
            or name not in have
            or not filecmp.cmp(want[name], have[name], shallow=False)
        )
    if stale:
        print("generated contracts are stale; run `make proto`:", *stale, sep="\n  ")  # noqa: T201 - a CLI script's message
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
