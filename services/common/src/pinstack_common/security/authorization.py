"""Ownership decisions, made in the owning service from the verified caller, and counted."""

from __future__ import annotations

from pinstack_common.errors import ForbiddenError
from pinstack_common.observability.metrics import AUTHORIZATION
from pinstack_common.security.tokens import Identity

__all__ = ["require_owner"]


def require_owner(caller: Identity, owner_id: int, *, message: str = "forbidden") -> None:
    """Raise :class:`ForbiddenError` with the contract's ``message`` unless ``caller`` owns it."""
    if caller.user_id != owner_id:
        AUTHORIZATION.labels("denied").inc()
        raise ForbiddenError(message)
    AUTHORIZATION.labels("allowed").inc()
