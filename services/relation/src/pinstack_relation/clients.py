"""The relation service's view of the user service: existence checks and batched profiles.

Served by the kit's :class:`pinstack_common.grpc.user_directory.GrpcUserDirectory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pinstack_common.profiles import Profile

__all__ = ["UserDirectory"]


class UserDirectory(Protocol):
    async def exists(self, user_id: int) -> bool: ...

    async def get_many(self, ids: Sequence[int]) -> list[Profile]:
        """The known users among ``ids`` (any order; unknown ids are absent)."""
