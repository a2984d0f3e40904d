"""Settings shared by every Pinstack process, read from ``PINSTACK_*`` environment variables.

Each component subclasses :class:`ServiceSettings`; external URLs given in the environment always
win over the embedded defaults chosen by ``pinstack up``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KNOWN_DEFAULT_INTERNAL_TOKENS", "ServiceSettings"]

# Tokens that were ever shipped as defaults: anyone can read them, so no stack may use them.
KNOWN_DEFAULT_INTERNAL_TOKENS = frozenset({"pinstack-dev-internal-token"})


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
    # No default: `pinstack up` generates one per data directory, `pinstack dev up` one per dev
    # stack, the operator one per PinstackStack; anything else must set PINSTACK_INTERNAL_TOKEN.
    internal_token: SecretStr = Field(default=SecretStr(""), validate_default=True)
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

    @field_validator("internal_token")
    @classmethod
    def _secret_internal_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if not token.strip():
            raise ValueError(
                "PINSTACK_INTERNAL_TOKEN is not set: set it to a random secret shared by every "
                "component of the stack (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`); `pinstack up` and `pinstack dev up` "
                "generate one themselves"
            )
        if token in KNOWN_DEFAULT_INTERNAL_TOKENS:
            raise ValueError(
                "PINSTACK_INTERNAL_TOKEN is a published default that any local process knows: "
                "set it to a random secret shared by every component of the stack"
            )
        return value
