"""The one place where failures become HTTP answers.

gRPC status codes from the services carry the contract's message as their details; the map
below gives the HTTP status. Request-parsing errors become ``invalid input`` (does not parse)
or ``validation failed`` (parses but breaks a rule). Anything else is a 500 and is logged.
"""

from __future__ import annotations

import grpc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from pinstack_common.errors import PinstackError
from pinstack_common.grpc.client import domain_error
from pinstack_common.observability.metrics import PROXY_ERRORS
from pinstack_common.validation import VALIDATION_FAILED
from pinstack_gateway.envelope import error

__all__ = ["install_error_handlers", "status_for"]

log = structlog.get_logger(__name__)

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_PARSE_ERRORS = ("json_invalid", "_parsing", "_type", "model_attributes_type")


def status_for(code: grpc.StatusCode) -> int:
    return _HTTP_STATUS.get(code, 500)


def _rpc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, grpc.aio.AioRpcError)
    code = exc.code()
    service = str(request.scope.get("pinstack.upstream", "unknown"))
    PROXY_ERRORS.labels(service, code.name).inc()
    if status_for(code) == 500:
        log.error("upstream failed", code=code.name, details=exc.details())
        return error(500, "internal server error")
    # The kit's client table gives the messages (fixed ones for outages) and the retry-after.
    return _domain_error(request, domain_error(exc))


def _domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PinstackError)
    status = status_for(exc.code)
    headers = {"Retry-After": str(getattr(exc, "retry_after", 1))} if status == 429 else None
    return error(status, exc.message, headers=headers)


def _request_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    kinds = [str(item.get("type", "")) for item in exc.errors()]
    if any(kind.endswith(_PARSE_ERRORS) or kind in _PARSE_ERRORS for kind in kinds):
        return error(400, "invalid input")
    return error(400, VALIDATION_FAILED)


def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "not found", 405: "method not allowed", 413: "request entity too large"}
    return error(
        exc.status_code, messages.get(exc.status_code, str(exc.detail)), headers=exc.headers
    )


def _unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return error(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(grpc.aio.AioRpcError, _rpc_error)
    app.add_exception_handler(PinstackError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
