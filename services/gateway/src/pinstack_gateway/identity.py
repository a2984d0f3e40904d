"""Bearer-token authentication for the gateway's JWT routes (a FastAPI dependency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pinstack_common.context import caller_authorization
from pinstack_common.errors import UnauthenticatedError
from pinstack_common.metrics import AUTHENTICATION
from pinstack_common.tokens import AccessTokenVerifier, Identity

__all__ = ["Caller", "require_caller"]


async def require_caller(request: Request) -> Identity:
    """Verify the access token and forward it, so services verify the same caller themselves."""
    verifier: AccessTokenVerifier = request.app.state.verifier
    header = request.headers.get("authorization") or request.query_params.get("token")
    if header and request.url.path.endswith("/ws") and not header.lower().startswith("bearer "):
        header = f"Bearer {header}"
    try:
        identity = await verifier.verify_header(header)
    except UnauthenticatedError as error:
        AUTHENTICATION.labels(error.message.replace(" ", "_")).inc()
        raise
    AUTHENTICATION.labels("success").inc()
    caller_authorization.set(header)
    return identity


Caller = Annotated[Identity, Depends(require_caller)]
