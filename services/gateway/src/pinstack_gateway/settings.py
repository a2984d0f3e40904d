"""Gateway settings (``PINSTACK_*``)."""

from __future__ import annotations

from pydantic import Field

from pinstack_common.settings import ServiceSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(ServiceSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # CORS is off unless origins are listed (``PINSTACK_CORS_ORIGINS='["https://app.example"]'``).
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
