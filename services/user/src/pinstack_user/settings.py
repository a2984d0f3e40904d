"""User service settings (``PINSTACK_*``)."""

from __future__ import annotations

from pinstack_common.settings import ServiceSettings

__all__ = ["UserSettings"]


class UserSettings(ServiceSettings):
    search_max_limit: int = 100
