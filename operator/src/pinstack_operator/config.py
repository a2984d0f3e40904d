"""Operator settings from ``PINSTACK_OPERATOR_*`` environment variables."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["OperatorConfig"]


def _default_identity() -> str:
    """Unique per process: the pod name (the hostname in a pod) and a random suffix, so a
    restarted container never mistakes its predecessor's Lease for its own."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class OperatorConfig(BaseModel):
    """How the operator runs; every field has an environment variable (see ``from_env``)."""

    model_config = ConfigDict(frozen=True)

    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()
    resync_seconds: float = Field(default=60.0, gt=0)
    retry_seconds: float = Field(default=10.0, gt=0)  # the first retry's delay
    retry_max_seconds: float = Field(default=300.0, gt=0)  # the cap of the doubling
    verbose: bool = False
    # /metrics and /healthz; 0 serves neither (a developer's run).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"  # in a pod: Prometheus scrapes the pod IP
    # Leader election: of several replicas only the holder of this Lease runs the handlers.
    leader_election: bool = False
    lease_namespace: str = ""
    lease_name: str = "pinstack-operator"
    lease_seconds: float = Field(default=15.0, gt=0)
    # Who holds the Lease; empty (the default): the hostname (the pod's name) and a random suffix.
    identity: str = ""

    @model_validator(mode="before")
    @classmethod
    def _identity(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("identity"):
            return {**data, "identity": _default_identity()}
        return data

    @model_validator(mode="after")
    def _lease_has_a_namespace(self) -> OperatorConfig:
        if self.leader_election and not self.lease_namespace:
            raise ValueError(
                "leader election needs the Lease's namespace (PINSTACK_OPERATOR_LEASE_NAMESPACE, "
                "the chart sets it to the operator's namespace)"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if environ is None else environ
        prefix = "PINSTACK_OPERATOR_"
        namespaces = tuple(
            item.strip() for item in env.get(f"{prefix}NAMESPACES", "").split(",") if item.strip()
        )
        return cls(
            kubeconfig=env.get(f"{prefix}KUBECONFIG") or env.get("KUBECONFIG") or None,
            namespaces=namespaces,
            resync_seconds=float(env.get(f"{prefix}RESYNC_SECONDS", "60")),
            retry_seconds=float(env.get(f"{prefix}RETRY_SECONDS", "10")),
            retry_max_seconds=float(env.get(f"{prefix}RETRY_MAX_SECONDS", "300")),
            verbose=_flag(env.get(f"{prefix}VERBOSE", "")),
            metrics_port=int(env.get(f"{prefix}METRICS_PORT", "0")),
            metrics_host=env.get(f"{prefix}METRICS_HOST")
            or cls.model_fields["metrics_host"].default,
            leader_election=_flag(env.get(f"{prefix}LEADER_ELECTION", "")),
            lease_namespace=env.get(f"{prefix}LEASE_NAMESPACE", ""),
            lease_name=env.get(f"{prefix}LEASE_NAME") or "pinstack-operator",
            lease_seconds=float(env.get(f"{prefix}LEASE_SECONDS", "15")),
            identity=env.get(f"{prefix}IDENTITY", ""),
        )

    def retry_delay(self, retry: int) -> float:
        """Exponential backoff for transient failures: ``retry_seconds`` doubled per retry
        (kopf counts them per handler since the last success or change), capped."""
        return min(self.retry_max_seconds, self.retry_seconds * 2.0 ** min(retry, 32))


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")
