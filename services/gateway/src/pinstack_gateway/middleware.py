"""Request id, metrics by route template, and the request body limit, as pure ASGI middleware.

The body limit (``max_body_bytes``) holds for every body: one that declares a larger
Content-Length is refused unread; any other (a chunked one declares no length) is read here and
refused with 413 the moment it passes the limit, so nothing ever buffers more than that.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pinstack_common.observability.logging import bind_request_id
from pinstack_common.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from pinstack_gateway.envelope import error

__all__ = ["STRICT_CSP", "GatewayMiddleware", "SecurityHeadersMiddleware", "swagger_csp"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON = b"application/json"


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = bind_request_id(_client_request_id(headers.get(b"x-request-id", b"")))
        method = scope["method"]
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        if (declared is not None and declared != b"0") or b"transfer-encoding" in headers:
            # The limit holds while reading, whatever the framing (a chunked body declares no
            # length): stop reading as soon as it passes the limit, and answer 413.
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await self._too_large(scope, receive, send)
                return
            if isinstance(body, bytes):
                receive = _replay(body, receive)
            else:  # the client went away mid-body: nobody to answer
                return
        if method in _BODY_METHODS and not headers.get(b"content-type", b"").startswith(_JSON):
            # The original gateway decoded every body as JSON whatever its Content-Type (so does
            # `curl -d`); keep accepting such clients.
            scope["headers"] = [
                (k, v) for k, v in scope.get("headers") or [] if k != b"content-type"
            ] + [(b"content-type", _JSON)]
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, "request entity too large")
        # The unread rest of the body stays unread: the connection closes after the answer.
        response.headers["connection"] = "close"
        await response(scope, receive, send)
        HTTP_REQUESTS.labels(scope["method"], _route_template(scope), "413").inc()


# What a request id may hold to be forwarded: it travels on as gRPC metadata, which takes printable
# ASCII only. A gRPC call given anything else never completed: the request hung to its deadline.
_REQUEST_ID = re.compile(rb"[\x20-\x7e]+")


def _client_request_id(raw: bytes) -> str:
    """The client's ``X-Request-Id`` if it can be forwarded as is, else "" (a fresh one is made)."""
    return raw.decode("ascii") if _REQUEST_ID.fullmatch(raw) else ""


async def _read_body(receive: Receive, limit: int) -> bytes | Message | None:
    """The whole body; None as soon as it exceeds ``limit``; the disconnect message if the
    client left before sending it all."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then defers to the real one (which
    reports the client's disconnect)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded), never the raw path.

    Routing stores the matched route in the scope, which is shared with this middleware.
    """
    route = scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched")


# Everything but the Swagger page is JSON and may load nothing. The Swagger page (its own policy,
# set by its route, see ``swagger_csp``) loads only the gateway's bundled assets.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def swagger_csp(html: str) -> str:
    """The Swagger page's policy: scripts and styles from the gateway itself, plus the page's
    own inline scripts by hash (no CDN, no other inline script)."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'"
    )


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options``, ``Referrer-Policy`` and a ``Content-Security-Policy`` on
    every HTTP answer (errors included). A route that set its own policy keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"x-content-type-options", b"referrer-policy")
                ]
                headers += [(b"x-content-type-options", b"nosniff")]
                headers += [(b"referrer-policy", b"no-referrer")]
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", STRICT_CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
