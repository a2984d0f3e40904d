"""The auth service's domain errors: the platform's, with the contract's exact messages."""

from __future__ import annotations

from pinstack_common.errors import UnauthenticatedError

__all__ = ["invalid_credentials", "invalid_refresh_token"]


def invalid_refresh_token() -> UnauthenticatedError:
    """Malformed, unknown, expired, already used or logged out: one answer for all of them."""
    return UnauthenticatedError("invalid refresh token")


def invalid_credentials() -> UnauthenticatedError:
    return UnauthenticatedError("invalid credentials")
