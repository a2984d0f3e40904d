"""The one exception hierarchy of Pinstack's domain code.

Use cases raise these; the gRPC error interceptor (:mod:`pinstack_common.grpc.server`) turns
them into status codes carrying the contract's exact message, the gateway turns status codes
into HTTP answers, and a service that calls another turns them back into these with
:func:`pinstack_common.grpc.client.domain_error`. Nothing else translates errors.
"""

from __future__ import annotations

import grpc

__all__ = [
    "AlreadyExistsError",
    "ForbiddenError",
    "InvalidArgumentError",
    "NotFoundError",
    "PinstackError",
    "RateLimitedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UpstreamFailedError",
    "UpstreamTimeoutError",
]


class PinstackError(Exception):
    """A failure the caller can act on; ``message`` is one of the HTTP contract's strings."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(PinstackError):
    """Input that breaks a rule (400)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class UnauthenticatedError(PinstackError):
    """Missing, bad or expired credentials (401)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ForbiddenError(PinstackError):
    """A verified caller acting on something that is not theirs (403)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class NotFoundError(PinstackError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(PinstackError):
    code = grpc.StatusCode.ALREADY_EXISTS


class RateLimitedError(PinstackError):
    """A limit was hit; ``retry_after`` seconds until the caller may try again (429)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str = "too many requests", *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class UnavailableError(PinstackError):
    """A dependency is down (503)."""

    code = grpc.StatusCode.UNAVAILABLE


class UpstreamTimeoutError(PinstackError):
    """A service this one depends on did not answer before the deadline (504)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED

    def __init__(self, message: str = "external service timeout") -> None:
        super().__init__(message)


class UpstreamFailedError(PinstackError):
    """A service this one called failed with a bug's status (500); the gRPC server logs it."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str = "internal error") -> None:
        super().__init__(message)
