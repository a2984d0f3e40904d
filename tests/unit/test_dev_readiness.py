"""``dev up`` readiness: an answer on a component's port counts only from the process it started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pinstack_cli.devstack import _http_ready, _ready
from pinstack_devinfra.ports import free_port
from pinstack_devinfra.procs import listens
from tests.polling import wait_until

# Answers 200 to everything, like another stack's gateway would on /readyz.
DUMMY = """
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'{"status":"ready"}')
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args])


@pytest.fixture
def occupied_port() -> Iterator[tuple[int, int]]:
    """A port held by a dummy HTTP server: (port, the dummy's pid)."""
    port = free_port()
    dummy = _spawn("-c", DUMMY, str(port))
    try:

        def answering() -> bool:
            assert dummy.poll() is None, "dummy server exited"
            return _http_ready(port)

        wait_until(answering, within=30, what="the dummy server to answer")
        yield port, dummy.pid
    finally:
        dummy.kill()
        dummy.wait()


def test_listens_sees_only_the_process_holding_the_socket(occupied_port: tuple[int, int]) -> None:
    port, dummy_pid = occupied_port
    assert listens(dummy_pid, port)
    assert not listens(os.getpid(), port)
    with socket.socket() as own:
        own.bind(("127.0.0.1", 0))
        own.listen()
        own_port = own.getsockname()[1]
        assert listens(os.getpid(), own_port)
        assert not listens(dummy_pid, own_port)
    assert not listens(os.getpid(), own_port)  # closed


def test_an_answer_from_another_process_on_the_port_is_not_ready(
    occupied_port: tuple[int, int],
) -> None:
    port, dummy_pid = occupied_port
    # What `dev up` started: alive, but it never got the port (its bind failed).
    started = _spawn("-c", "import time; time.sleep(120)")
    try:
        assert _http_ready(port)  # the old check: fooled by the other process's answer
        assert not _ready("gateway", started.pid, port)
        assert _ready("gateway", dummy_pid, port)  # the holder itself does count
    finally:
        started.kill()
        started.wait()
    assert not _ready("gateway", started.pid, port)  # and a dead process never does
