"""No log line shows a credential: tokens in query strings, bearer headers, JWTs anywhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from pinstack_common.observability.logging import REDACTED, configure_logging, redact

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Our JSON logging, restored afterwards. Configured in the test body (``configure``): the
    handler binds the ``sys.stderr`` of that moment, which capsys swaps between phases."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield capsys
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize(
    "text",
    [
        f"/api/v1/notification/ws?token={JWT}",
        "/api/v1/notification/ws?token=opaque-secret-value&x=1",
        f"Authorization: Bearer {JWT}",
        "authorization=bearer opaque-secret-value",
        f"see {JWT} here",
    ],
)
def test_redact_masks_credentials(text: str) -> None:
    masked = redact(text)
    assert JWT not in masked
    assert "opaque-secret-value" not in masked
    assert REDACTED in masked


def test_redact_leaves_ordinary_text() -> None:
    for text in ("GET /api/v1/posts?page=2&limit=10", "user registered", "tokens issued: 3"):
        assert redact(text) == text


def configure() -> None:
    configure_logging(level="INFO", fmt="json", component="test")


def test_uvicorn_lines_are_redacted(json_logs: pytest.CaptureFixture[str]) -> None:
    configure()
    # uvicorn's WebSocket line (logger uvicorn.error, INFO) and its access-log format.
    path = f"/api/v1/notification/ws?token={JWT}"
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", path
    )
    logging.getLogger("uvicorn.access").warning(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 101
    )
    err = json_logs.readouterr().err
    assert err.count("[accepted]") == 1
    assert err.count("HTTP/1.1") == 1
    assert JWT not in err
    assert err.count(f"token={REDACTED}") == 2


def test_structlog_fields_are_redacted(json_logs: pytest.CaptureFixture[str]) -> None:
    configure()
    log = structlog.get_logger("test")
    log.info(
        "socket refused",
        path=f"/ws?token={JWT}",
        authorization=f"Bearer {JWT}",
        headers={"authorization": "Bearer opaque-secret-value", "host": "gw"},
        token="opaque-secret-value",
    )
    err = json_logs.readouterr().err
    assert "socket refused" in err
    assert '"host": "gw"' in err
    assert JWT not in err
    assert "opaque-secret-value" not in err
