"""Read deadlines for HTTP requests, so slow clients cannot hold connections open.

uvicorn only times out *idle* keep-alive connections, after a response. A client that opens a
connection and sends its request head a byte at a time (slowloris), or declares a body and
trickles it, holds a socket, a file descriptor and a parser for as long as it likes: each byte
is new data, and nothing limits how long a request may take to arrive. A few hundred such
clients exhaust a gateway. uvicorn (h11 and httptools alike) has no header or body read timeout,
so this module adds one by subclassing the httptools protocol that uvicorn picks by default
(``http="auto"`` with httptools installed): parsing and everything else stay uvicorn's.

One timer per connection:

* **head**: from the connection's opening, and on a kept-alive connection from the first byte
  of each later request, until the request head is complete — ``header_seconds``. The idle time
  between requests stays uvicorn's ``timeout_keep_alive``.
* **body**: from the end of the head until the end of the body — ``body_seconds``, a total and
  not an idle timeout, so a body trickled a byte at a time cannot keep resetting it.

Past either, the connection is closed (as nginx does for ``client_header_timeout``): a head that
never completed has no request to answer, and the app already holds a body's request, so it sees
a client disconnect. The timer stops at a WebSocket upgrade: the upgraded connection belongs to
the WebSocket protocol (its pings, the app's session rules), not to a request being read.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

__all__ = ["ReadTimeoutProtocol", "read_timeout_protocol"]

log = structlog.get_logger(__name__)

_Phase = Literal["head", "body"]


class ReadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head and body read deadlines (class attributes: uvicorn
    builds protocols itself, from the class; :func:`read_timeout_protocol` sets them)."""

    header_seconds: float = 10.0
    body_seconds: float = 30.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("head", self.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the first request keeps the clock started at the connection
            self._arm("head", self.header_seconds)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # A request without a body completes in the same parser call, which disarms this again.
        self._arm("body", self.body_seconds)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()

    def _arm(self, phase: _Phase, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, phase, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: _Phase, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        host = self.client[0] if self.client else ""
        log.info("slow client closed", phase=phase, seconds=seconds, peer=host)
        self.transport.close()


def read_timeout_protocol(*, header_seconds: float, body_seconds: float) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn as ``Config(http=...)``, with these deadlines."""
    return type(
        "ReadTimeoutProtocol",
        (ReadTimeoutProtocol,),
        {"header_seconds": header_seconds, "body_seconds": body_seconds},
    )
