"""Bearer-token authentication at the edge: the JWT routes' dependency and the WebSocket's check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack_common.context import caller_authorization
from pinstack_common.errors import UnauthenticatedError
from pinstack_common.observability.metrics import AUTHENTICATION
from pinstack_common.security.revocation import (
    AuthorityAnswer,
    RevocationAuthority,
    SessionRevocations,
)
from pinstack_common.security.tokens import AccessTokenVerifier, Identity

__all__ = ["Caller", "auth_revocation_authority", "authenticate", "require_caller"]


def auth_revocation_authority(auth: auth_pb2_grpc.AuthServiceAsyncStub) -> RevocationAuthority:
    """Ask the auth service (its database) whether a session ended: the check behind Redis.

    Any failure propagates: :class:`SessionRevocations` turns it into a 503, never an accept.
    """

    async def check(identity: Identity) -> AuthorityAnswer:
        reply = await auth.CheckSession(
            auth_pb2.CheckSessionRequest(
                session_id=identity.session_id,
                user_id=identity.user_id,
                issued_at=identity.issued_at,
            )
        )
        return AuthorityAnswer(revoked=reply.revoked, cache_current=reply.cache_current)

    return check


async def authenticate(state: Any, authorization: str | None) -> Identity:
    """Verify the token, refuse ended sessions, and forward the token to the services.

    Services verify the same token themselves; forwarding it is how they learn the caller.
    When whether the session ended cannot be known (Redis and auth both unreachable), the
    revocation check raises ``UnavailableError``: the error handler answers 503.
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
