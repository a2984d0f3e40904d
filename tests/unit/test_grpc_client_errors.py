"""The one client-side table: every gRPC status a call to another service can end with becomes
one domain error, whichever service made the call (``pinstack_common.grpc.client``)."""

from __future__ import annotations

import grpc
import pytest

from pinstack_common import errors
from pinstack_common.grpc.client import domain_error
from pinstack_gateway.errors import status_for

WORDS = "callee's words"
FAILED = (errors.UpstreamFailedError, "internal error", 500)
# status -> (domain error, its message when the callee said WORDS, the gateway's HTTP status)
EXPECTED: dict[grpc.StatusCode, tuple[type[errors.PinstackError], str, int]] = {
    grpc.StatusCode.OK: FAILED,
    grpc.StatusCode.CANCELLED: FAILED,
    grpc.StatusCode.UNKNOWN: FAILED,
    grpc.StatusCode.INVALID_ARGUMENT: (errors.InvalidArgumentError, WORDS, 400),
    grpc.StatusCode.DEADLINE_EXCEEDED: (
        errors.UpstreamTimeoutError,
        "external service timeout",
        504,
    ),
    grpc.StatusCode.NOT_FOUND: (errors.NotFoundError, WORDS, 404),
    grpc.StatusCode.ALREADY_EXISTS: (errors.AlreadyExistsError, WORDS, 409),
    grpc.StatusCode.PERMISSION_DENIED: (errors.ForbiddenError, WORDS, 403),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (errors.RateLimitedError, WORDS, 429),
    grpc.StatusCode.FAILED_PRECONDITION: (errors.InvalidArgumentError, WORDS, 400),
    grpc.StatusCode.ABORTED: FAILED,
    grpc.StatusCode.OUT_OF_RANGE: (errors.InvalidArgumentError, WORDS, 400),
    grpc.StatusCode.UNIMPLEMENTED: FAILED,
    grpc.StatusCode.INTERNAL: FAILED,
    grpc.StatusCode.UNAVAILABLE: (errors.UnavailableError, "external service unavailable", 503),
    grpc.StatusCode.DATA_LOSS: FAILED,
    grpc.StatusCode.UNAUTHENTICATED: (errors.UnauthenticatedError, WORDS, 401),
}


def _failure(
    code: grpc.StatusCode, details: str, trailers: grpc.aio.Metadata | None = None
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), trailers or grpc.aio.Metadata(), details=details
    )


def test_the_table_covers_every_status() -> None:
    assert set(EXPECTED) == set(grpc.StatusCode)


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda code: code.name)
def test_each_status_becomes_one_domain_error(code: grpc.StatusCode) -> None:
    kind, message, http_status = EXPECTED[code]
    error = domain_error(_failure(code, WORDS))
    assert type(error) is kind
    assert error.message == message
    # The gateway answers the error as it would have answered the callee's status itself.
    assert status_for(error.code) == status_for(code) == http_status


def test_a_contract_message_passes_unchanged() -> None:
    error = domain_error(_failure(grpc.StatusCode.ALREADY_EXISTS, "username already exists"))
    assert isinstance(error, errors.AlreadyExistsError)
    assert error.message == "username already exists"


def test_a_rate_limit_keeps_the_callees_retry_after() -> None:
    trailers = grpc.aio.Metadata(("retry-after", "7"))
    error = domain_error(
        _failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests", trailers)
    )
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after == 7
    unreadable = grpc.aio.Metadata(("retry-after", "soon"))
    error = domain_error(_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", unreadable))
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after == 1
