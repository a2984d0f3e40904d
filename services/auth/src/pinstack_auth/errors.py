"""The auth service's domain errors: the platform's, with the contract's exact messages."""

from __future__ import annotations

import grpc

from pinstack_common.errors import PinstackError, UnauthenticatedError

__all__ = ["UpstreamTimeoutError", "invalid_credentials", "invalid_refresh_token"]


class UpstreamTimeoutError(PinstackError):
    """A service this one depends on did not answer before the deadline (504)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED

    def __init__(self, message: str = "external service timeout") -> None:
        super().__init__(message)


def invalid_refresh_token() -> UnauthenticatedError:
    """Malformed, unknown, expired, already used or logged out: one answer for all of them."""
    return UnauthenticatedError("invalid refresh token")


def invalid_credentials() -> UnauthenticatedError:
    return UnauthenticatedError("invalid credentials")
