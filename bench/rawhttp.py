"""A minimal HTTP/1.1 keep-alive client for the load generator.

httpx spends a few hundred microseconds of CPU per request in the client; on a 2-core machine
shared with the stack under test that would make the generator part of what is measured.
Here requests are pre-built bytes and the parser reads only the status line, the framing
headers and the body, so a request costs tens of microseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["ConnectionPool", "HttpError", "build_request"]


class HttpError(Exception):
    """The server closed the connection or answered something that is not HTTP/1.1."""


def build_request(
    method: str, path: str, *, host: str, token: str | None = None, body: bytes | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + (body or b"")


# uvicorn closes a keep-alive connection after 5 idle seconds; retire ours before that.
IDLE_LIMIT = 4.0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()
        self.reused = False

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, raw: bytes) -> tuple[int, bytes, bool]:
        """Send one request, read one response: (status, body, keep-alive)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        length = -1
        chunked = False
        keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = b"close" not in value.lower()
        if chunked:
            body = await self._chunks()
        elif length >= 0:
            body = await self.reader.readexactly(length)
        else:  # no framing: the body runs to the end of the connection
            body = await self.reader.read()
            keep_alive = False
        return status, body, keep_alive

    async def _chunks(self) -> bytes:
        out = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers expected
                return bytes(out)
            out += await self.reader.readexactly(size)
            await self.reader.readexactly(2)


class ConnectionPool:
    """Idle keep-alive connections, opened on demand up to ``max_connections``.

    A request that finds every connection busy waits for one; in open-loop mode the wait is
    part of its latency because latency is measured from the scheduled send time.
    """

    def __init__(self, host: str, port: int, *, max_connections: int = 256) -> None:
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self._idle: deque[_Connection] = deque()
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def _acquire(self) -> _Connection:
        while True:
            while self._idle:
                connection = self._idle.pop()
                if time.monotonic() - connection.idle_since < IDLE_LIMIT:
                    connection.reused = True
                    return connection
                connection.close()  # the server may have closed it already: do not send on it
                self._open -= 1
            if self._open < self.max_connections:
                self._open += 1
                try:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
                return _Connection(reader, writer)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, connection: _Connection, *, reuse: bool) -> None:
        if reuse:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
            self._open -= 1
        self._wake()

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection = await self._acquire()
            reuse = False
            try:
                status, body, reuse = await connection.exchange(raw)
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                # A kept-alive connection the server closed just now fails before any answer;
                # like any HTTP client, send once more on a fresh one. A new one failing is real.
                if connection.reused and attempt == 1:
                    continue
                raise HttpError(type(error).__name__) from error
            finally:
                # A cancelled (timed-out) exchange leaves the connection mid-response: drop it.
                self._release(connection, reuse=reuse)
            return status, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self._open = 0
