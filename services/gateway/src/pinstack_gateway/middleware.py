"""Request id, metrics by route template, and the request body limit, as pure ASGI middleware."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pinstack_common.logging import bind_request_id
from pinstack_common.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from pinstack_gateway.envelope import error

__all__ = ["GatewayMiddleware"]

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
        request_id = bind_request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        method = scope["method"]
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            response = error(413, "request entity too large")
            await response(scope, receive, send)
            HTTP_REQUESTS.labels(method, _route_template(scope), "413").inc()
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


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded), never the raw path.

    Routing stores the matched route in the scope, which is shared with this middleware.
    """
    route = scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched")
