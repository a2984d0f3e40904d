"""docs/configuration.md is generated from the settings classes and names every variable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
SERVICES = ("AUTH", "USER", "POST", "RELATION", "NOTIFICATION")


def test_the_committed_document_is_what_the_generator_writes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _sources() -> list[Path]:
    return [
        *ROOT.glob("services/*/src/pinstack_*/**/*.py"),
        *ROOT.glob("operator/src/pinstack_operator/**/*.py"),
        *ROOT.glob("charts/*/templates/*"),
        *ROOT.glob("bench/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
    ]


def test_every_variable_the_code_reads_or_sets_is_documented() -> None:
    documented = set(re.findall(r"`(PINSTACK_[A-Z0-9_<>]+)`", DOC.read_text()))
    missing = set()
    for path in _sources():
        for found in re.findall(r"PINSTACK_[A-Z0-9_]*[A-Z0-9]", path.read_text()):
            # ``PINSTACK_OPERATOR_`` is a prefix in code; per-service URLs share one row.
            service = found.removeprefix("PINSTACK_").removesuffix("_DATABASE_URL")
            name = "PINSTACK_<SERVICE>_DATABASE_URL" if service in SERVICES else found
            if name not in documented and name != "PINSTACK_OPERATOR":
                missing.add(f"{name} ({path.relative_to(ROOT)})")
    assert not missing, sorted(missing)
