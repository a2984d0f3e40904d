"""Settings shared by every Pinstack process, read from ``PINSTACK_*`` environment variables.

Each component subclasses :class:`ServiceSettings`; external URLs given in the environment always
win over the embedded defaults chosen by ``pinstack up``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINSTACK_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/pinstack"
    redis_url: str = "redis://127.0.0.1:6379/0"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    metrics_port: int = 0
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    # Shared secret that authenticates internal RPCs; every component of a stack has the same one.
    internal_token: SecretStr = SecretStr("pinstack-dev-internal-token")
    event_transport: Literal["inprocess", "kafka"] = "kafka"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    otlp_endpoint: str | None = None
    # Abusable endpoints' limits (login failures, notification send); off for benchmarks.
    rate_limits_enabled: bool = True
    db_pool_size: int = Field(default=10, ge=1)
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    auth_addr: str = "127.0.0.1:50052"
    user_addr: str = "127.0.0.1:50051"
    post_addr: str = "127.0.0.1:50053"
    relation_addr: str = "127.0.0.1:50054"
    notification_addr: str = "127.0.0.1:50055"
