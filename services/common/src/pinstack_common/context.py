"""Per-request context that crosses process boundaries in gRPC metadata.

The gateway sets the caller's bearer token; the gRPC server interceptor restores it (and the
request id) from incoming metadata; the gRPC client interceptor forwards both. A service then
verifies the token itself: it never trusts a user id a caller merely asserts.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["AUTHORIZATION_KEY", "INTERNAL_TOKEN_KEY", "caller_authorization"]

AUTHORIZATION_KEY = "authorization"
INTERNAL_TOKEN_KEY = "x-pinstack-internal-token"  # noqa: S105 - a header name, not a secret

# The raw ``Authorization`` value of the end user on whose behalf this request runs.
caller_authorization: ContextVar[str | None] = ContextVar("caller_authorization", default=None)
