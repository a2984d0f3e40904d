"""Gateway settings (``PINSTACK_*``)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

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
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: IPs or CIDRs
    # (``PINSTACK_TRUSTED_PROXIES='["10.244.0.0/16"]'``, JSON list). Empty (the default): nobody's,
    # the socket's peer is the client, so a client cannot choose the address its login limit
    # counts against. Behind an Ingress: the ingress controller pods' addresses (docs/security.md).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Slow clients (``pinstack_gateway.read_timeouts``): a request head must arrive within
    # this many seconds of the connection opening (or of its first byte on a kept-alive
    # connection), and its body within this many seconds after the head.
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _ip_or_network(cls, entries: list[str]) -> list[str]:
        """Canonical IPs and networks only: uvicorn quietly takes anything else (a typo, a
        network with host bits set) as a literal that never matches a peer."""
        canonical = []
        for entry in (raw.strip() for raw in entries):
            try:
                if "/" in entry:
                    canonical.append(str(ipaddress.ip_network(entry, strict=False)))
                else:
                    canonical.append(str(ipaddress.ip_address(entry)))
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or network (CIDR)"
                ) from None
        return canonical
