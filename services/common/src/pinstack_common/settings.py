"""Settings shared by every Pinstack process, read from ``PINSTACK_*`` environment variables.

Each component subclasses :class:`ServiceSettings`; external URLs given in the environment always
win over the embedded defaults chosen by ``pinstack up``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "KNOWN_DEFAULT_INTERNAL_TOKENS",
    "KafkaSaslMechanism",
    "KafkaSecurityProtocol",
    "ServiceSettings",
]

# Tokens that were ever shipped as defaults: anyone can read them, so no stack may use them.
KNOWN_DEFAULT_INTERNAL_TOKENS = frozenset({"pinstack-dev-internal-token"})


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINSTACK_", extra="ignore")

    # TLS the libpq way, `?sslmode=verify-full&sslrootcert=/path/ca.crt` (see db.engine).
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
    # How every Kafka client (producer, consumers, topic admin) reaches the brokers; the
    # librdkafka properties they become are kafka_client_config()'s.
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    # PEM bundle of the CA that signed the brokers' certificates; unset: the system's store.
    kafka_ssl_ca_location: str | None = None
    kafka_sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
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

    @model_validator(mode="after")
    def _consistent_kafka_security(self) -> ServiceSettings:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        if sasl and not (self.kafka_sasl_username and password):
            raise ValueError(
                f"PINSTACK_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "PINSTACK_KAFKA_SASL_USERNAME and PINSTACK_KAFKA_SASL_PASSWORD"
            )
        if not sasl and self.kafka_sasl_username:
            raise ValueError(
                "PINSTACK_KAFKA_SASL_USERNAME is set but PINSTACK_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol} does not authenticate: use SASL_SSL"
            )
        if self.kafka_ssl_ca_location and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(
                "PINSTACK_KAFKA_SSL_CA_LOCATION is set but PINSTACK_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol} does not use TLS: use SSL or SASL_SSL"
            )
        return self

    def kafka_client_config(self) -> dict[str, str]:
        """The librdkafka properties for the brokers' security (PLAINTEXT: none)."""
        config: dict[str, str] = {"security.protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.endswith("SSL"):
            # librdkafka's default, said out loud: a certificate for another host is refused.
            config["ssl.endpoint.identification.algorithm"] = "https"
            if self.kafka_ssl_ca_location:
                config["ssl.ca.location"] = self.kafka_ssl_ca_location
        if self.kafka_security_protocol.startswith("SASL_"):
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
            # Both are set for a SASL protocol (the validator above).
            config["sasl.username"] = self.kafka_sasl_username or ""
            config["sasl.password"] = (self.kafka_sasl_password or SecretStr("")).get_secret_value()
        return config
