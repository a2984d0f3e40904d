"""The response envelope of the HTTP contract: `{status, data}` or `{status, message}`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse, Response
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["error", "ok", "rfc3339"]


def ok(data: Any = None, *, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"status": status}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


def error(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"status": status, "message": message}, status_code=status, headers=headers)


def rfc3339(stamp: Timestamp) -> str:
    moment = datetime.fromtimestamp(stamp.seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
