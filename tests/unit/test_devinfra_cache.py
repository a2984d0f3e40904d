"""``build_once``: concurrent installs of a cached tool build it once; a failed one is redone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pinstack_devinfra.cache import build_once


def test_concurrent_callers_build_once(tmp_path: Path) -> None:
    target = tmp_path / "tool"
    builds: list[int] = []
    entered = threading.Event()
    release = threading.Event()

    def build() -> None:
        builds.append(1)
        entered.set()
        assert release.wait(30)
        target.write_text("built")

    first = threading.Thread(target=build_once, args=(tmp_path,),
                             kwargs={"done": target.exists, "build": build})  # fmt: skip
    first.start()
    assert entered.wait(30)
    second = threading.Thread(target=build_once, args=(tmp_path,),
                              kwargs={"done": target.exists, "build": build})  # fmt: skip
    second.start()  # waits on the lock while the first builds
    release.set()
    first.join(30)
    second.join(30)
    assert builds == [1]
    assert target.read_text() == "built"


def test_a_failed_build_is_redone_by_the_next_caller(tmp_path: Path) -> None:
    target = tmp_path / "tool"

    def broken() -> None:
        raise RuntimeError("download failed")

    with pytest.raises(RuntimeError, match="download failed"):
        build_once(tmp_path, done=target.exists, build=broken)
    build_once(tmp_path, done=target.exists, build=lambda: target.write_text("built"))
    assert target.read_text() == "built"
