"""Bearer-token authentication at the edge: the JWT routes' dependency and the WebSocket's check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from pinstack_common.context import caller_authorization
from pinstack_common.errors import UnauthenticatedError
from pinstack_common.metrics import AUTHENTICATION
from pinstack_common.revocation import SessionRevocations
from pinstack_common.tokens import AccessTokenVerifier, Identity

__all__ = ["Caller", "authenticate", "require_caller"]


async def authenticate(state: Any, authorization: str | None) -> Identity:
    """Verify the token, refuse ended sessions, and forward the token to the services.

    Services verify the same token themselves; forwarding it is how they learn the caller.
    """
    verifier: AccessTokenVerifier = state.verifier
    revocations: SessionRevocations | None = state.revocations
    try:
        identity = await verifier.verify_header(authorization)
        if revocations is not None and await revocations.is_revoked(identity):
            raise UnauthenticatedError("unauthenticated")
    except UnauthenticatedError as error:
        AUTHENTICATION.labels(error.message.replace(" ", "_")).inc()
        raise
    AUTHENTICATION.labels("success").inc()
    caller_authorization.set(authorization)
    return identity


async def require_caller(request: Request) -> Identity:
    return await authenticate(request.app.state, request.headers.get("authorization"))


Caller = Annotated[Identity, Depends(require_caller)]
