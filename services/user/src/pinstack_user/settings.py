"""User service settings (``PINSTACK_*``)."""

from __future__ import annotations

from pinstack_common.settings import ServiceSettings
from pinstack_common.validation import PAGE_LIMIT_MAX

__all__ = ["UserSettings"]


class UserSettings(ServiceSettings):
    search_max_limit: int = PAGE_LIMIT_MAX
