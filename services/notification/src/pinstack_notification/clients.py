"""The notification service's view of the user service: does a recipient exist?

Served by the kit's :class:`pinstack_common.grpc.user_directory.GrpcUserDirectory`.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["UserDirectory"]


class UserDirectory(Protocol):
    async def exists(self, user_id: int) -> bool: ...
