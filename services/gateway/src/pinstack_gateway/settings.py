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
    # WebSocket sessions: the most open sockets one user may hold on one gateway, and how often
    # an open socket re-checks that its session was not ended (logout, password change).
    ws_max_connections_per_user: int = Field(default=5, ge=1)
    ws_revocation_check_seconds: float = Field(default=5.0, gt=0)
