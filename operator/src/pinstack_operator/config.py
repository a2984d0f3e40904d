"""Operator settings from ``PINSTACK_OPERATOR_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OperatorConfig"]


class OperatorConfig(BaseModel):
    """How the operator runs; every field has an environment variable (see ``from_env``)."""

    model_config = ConfigDict(frozen=True)

    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()
    resync_seconds: float = Field(default=60.0, gt=0)
    retry_seconds: float = Field(default=10.0, gt=0)  # the first retry's delay
    retry_max_seconds: float = Field(default=300.0, gt=0)  # the cap of the doubling
    liveness_endpoint: str | None = None
    verbose: bool = False

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
            liveness_endpoint=env.get(f"{prefix}LIVENESS_ENDPOINT") or None,
            verbose=env.get(f"{prefix}VERBOSE", "").lower() in ("1", "true", "yes"),
        )

    def retry_delay(self, retry: int) -> float:
        """Exponential backoff for transient failures: ``retry_seconds`` doubled per retry
        (kopf counts them per handler since the last success or change), capped."""
        return min(self.retry_max_seconds, self.retry_seconds * 2.0 ** min(retry, 32))
