"""The internal-RPC token: never empty or a published default; per data directory in ``up``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from pinstack_cli.embedded import INTERNAL_TOKEN_FILE, internal_token
from pinstack_common.settings import ServiceSettings


@pytest.fixture(autouse=True)
def _no_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINSTACK_INTERNAL_TOKEN", raising=False)


@pytest.mark.parametrize("token", [None, "", "   ", "pinstack-dev-internal-token"])
def test_settings_refuse_a_missing_empty_or_default_token(token: str | None) -> None:
    with pytest.raises(ValidationError, match="PINSTACK_INTERNAL_TOKEN"):
        ServiceSettings() if token is None else ServiceSettings(internal_token=token)


def test_settings_refuse_the_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINSTACK_INTERNAL_TOKEN", "pinstack-dev-internal-token")
    with pytest.raises(ValidationError, match="published default"):
        ServiceSettings()


def test_settings_accept_a_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINSTACK_INTERNAL_TOKEN", "s3cret-from-env")
    assert ServiceSettings().internal_token.get_secret_value() == "s3cret-from-env"


def test_serve_without_a_token_stops_at_once_with_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PINSTACK_INTERNAL_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "pinstack_cli", "serve", "user"],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "PINSTACK_INTERNAL_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_makes_a_private_random_token_per_data_dir_and_reuses_it(tmp_path: Path) -> None:
    first = internal_token(tmp_path / "a")
    assert len(first) >= 32
    assert first != "pinstack-dev-internal-token"
    path = tmp_path / "a" / INTERNAL_TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert internal_token(tmp_path / "a") == first  # reused across restarts
    assert internal_token(tmp_path / "b") != first  # another data dir, another stack
    ServiceSettings(internal_token=first)  # and it passes validation


def test_up_tightens_a_readable_token_file_and_replaces_an_empty_one(tmp_path: Path) -> None:
    token = internal_token(tmp_path)
    path = tmp_path / INTERNAL_TOKEN_FILE
    path.chmod(0o644)
    assert internal_token(tmp_path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("")
    fresh = internal_token(tmp_path)
    assert fresh
    assert fresh != token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
