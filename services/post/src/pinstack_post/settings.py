"""Post service settings (``PINSTACK_*``)."""

from __future__ import annotations

from pydantic import Field

from pinstack_common.settings import ServiceSettings

__all__ = ["PostSettings"]


class PostSettings(ServiceSettings):
    grpc_port: int = 50053
    list_default_limit: int = Field(default=20, ge=1)
    list_max_limit: int = Field(default=100, ge=1)
    # Single posts and author summaries; author changes also invalidate explicitly.
    cache_ttl_seconds: int = Field(default=300, ge=1)
