"""Post service settings (``PINSTACK_*``)."""

from __future__ import annotations

from pydantic import Field

from pinstack_common.settings import ServiceSettings
from pinstack_common.validation import PAGE_LIMIT_MAX

__all__ = ["PostSettings"]


class PostSettings(ServiceSettings):
    grpc_port: int = 50053
    list_default_limit: int = Field(default=20, ge=1)
    list_max_limit: int = Field(default=PAGE_LIMIT_MAX, ge=1)
    # Single posts; every change of a post invalidates its entry explicitly.
    cache_ttl_seconds: int = Field(default=300, ge=1)
    # Author summaries are invalidated by user events (refresh_author / delete_posts_of_author);
    # the shorter TTL bounds how stale a profile can look if such an event is late.
    author_cache_ttl_seconds: int = Field(default=60, ge=1)
