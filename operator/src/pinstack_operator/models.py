"""The PinstackStack spec as typed models (the CRD's schema is the source of truth; these
mirror it, with the CRD's defaults, so the operator can read a spec the API server has
already validated and defaulted)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "CaSecretRef",
    "ImageSpec",
    "KafkaSaslSpec",
    "KafkaSpec",
    "LocalObjectReference",
    "MigrationJobsSpec",
    "MonitoringSpec",
    "PostgresSpec",
    "SecretKeyRef",
    "ServiceSpec",
    "StackSpec",
    "TopicSpec",
]

GROUP = "pinstack.io"
VERSION = "v1alpha1"
KIND = "PinstackStack"
PLURAL = "pinstackstacks"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class ImageSpec(_Model):
    repository: str
    tag: str | None = None
    digest: str | None = None  # ``sha256:...``: pins the image; wins over the tag
    pull_policy: str = Field(default="IfNotPresent", alias="pullPolicy")

    @property
    def reference(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


class SecretKeyRef(_Model):
    name: str
    username_key: str = Field(default="username", alias="usernameKey")
    password_key: str = Field(default="password", alias="passwordKey")


class CaSecretRef(_Model):
    """A PEM CA bundle in a Secret of the stack's namespace."""

    name: str
    key: str = "ca.crt"


class PostgresSpec(_Model):
    host: str
    port: int = 5432
    admin_database: str = Field(default="postgres", alias="adminDatabase")
    sslmode: str = "prefer"
    admin_credentials: SecretKeyRef = Field(alias="adminCredentialsSecretRef")
    ca: CaSecretRef | None = Field(default=None, alias="caSecretRef")


class KafkaSaslSpec(_Model):
    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    credentials: SecretKeyRef = Field(alias="credentialsSecretRef")


class KafkaSpec(_Model):
    bootstrap_servers: str = Field(alias="bootstrapServers")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="securityProtocol"
    )
    ca: CaSecretRef | None = Field(default=None, alias="caSecretRef")
    sasl: KafkaSaslSpec | None = None


class RedisSpec(_Model):
    url: str | None = None


class ServiceSpec(_Model):
    name: Literal["user", "auth", "post", "relation", "notification", "gateway"]
    database: str | None = None
    migrate: bool = True


class TopicSpec(_Model):
    name: str
    partitions: int
    replication_factor: int = Field(default=1, alias="replicationFactor")
    config: dict[str, str] = Field(default_factory=dict)


class MonitoringSpec(_Model):
    enabled: bool = False
    labels: dict[str, str] = Field(default_factory=dict)


_JOB_RESOURCES: dict[str, dict[str, str | int]] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}


class MigrationJobsSpec(_Model):
    """Limits of the migration Jobs (the CRD's defaults)."""

    active_deadline_seconds: int = Field(default=900, alias="activeDeadlineSeconds")
    backoff_limit: int = Field(default=4, alias="backoffLimit")
    ttl_seconds_after_finished: int = Field(default=86400, alias="ttlSecondsAfterFinished")
    resources: dict[str, dict[str, str | int]] = Field(default_factory=lambda: _JOB_RESOURCES)


class LocalObjectReference(_Model):
    name: str


class StackSpec(_Model):
    image: ImageSpec
    postgres: PostgresSpec
    kafka: KafkaSpec
    redis: RedisSpec = Field(default_factory=RedisSpec)
    services: tuple[ServiceSpec, ...]
    topics: tuple[TopicSpec, ...] = ()
    reclaim_policy: Literal["Retain", "Delete"] = Field(default="Retain", alias="reclaimPolicy")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    image_pull_secrets: tuple[LocalObjectReference, ...] = Field(
        default=(), alias="imagePullSecrets"
    )
    migration_jobs: MigrationJobsSpec = Field(
        default_factory=MigrationJobsSpec, alias="migrationJobs"
    )

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> StackSpec:
        return cls.model_validate(dict(spec))

    @property
    def database_services(self) -> tuple[ServiceSpec, ...]:
        return tuple(service for service in self.services if service.database)

    @property
    def migrating_services(self) -> tuple[ServiceSpec, ...]:
        return tuple(service for service in self.database_services if service.migrate)
