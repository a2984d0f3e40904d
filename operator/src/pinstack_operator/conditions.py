"""Status conditions (Kubernetes ``metav1.Condition`` shape) and the phase derived from them."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CONDITION_TYPES",
    "Clock",
    "ConditionResult",
    "merge_conditions",
    "phase_for",
    "system_clock",
]

Clock = Callable[[], datetime.datetime]
Status = Literal["True", "False", "Unknown"]

CONDITION_TYPES = (
    "Ready",
    "DatabasesReady",
    "TopicsReady",
    "MigrationsComplete",
    "MonitoringReady",
    "ReclaimFailed",  # only while a deletion with reclaimPolicy: Delete cannot finish
)


# Not-ready reasons that need the user, besides every ``...Failed``.
_DEGRADED = frozenset({"OwnedByAnotherStack"})


def system_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True, kw_only=True)
class ConditionResult:
    """The outcome of one part of the reconcile, as a condition."""

    type: str
    status: Status
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    *,
    previous: Iterable[Mapping[str, Any]],
    results: Sequence[ConditionResult],
    generation: int,
    clock: Clock,
) -> list[dict[str, Any]]:
    """New condition list: ``lastTransitionTime`` moves only when a condition's status changes."""
    before = {str(item.get("type")): item for item in previous}
    now = _timestamp(clock())
    merged: list[dict[str, Any]] = []
    for result in results:
        old = before.get(result.type)
        changed = old is None or old.get("status") != result.status
        merged.append(
            {
                "type": result.type,
                "status": result.status,
                "reason": result.reason,
                "message": result.message[:32000],
                "observedGeneration": generation,
                "lastTransitionTime": (
                    str(old.get("lastTransitionTime", now)) if old and not changed else now
                ),
            }
        )
    return merged


def ready_condition(parts: Sequence[ConditionResult]) -> ConditionResult:
    """``Ready`` is the conjunction of every other condition; its message names what is not."""
    failing = [part for part in parts if not part.ok]
    if not failing:
        return ConditionResult(
            type="Ready", status="True", reason="AllReady", message="all resources provisioned"
        )
    first = failing[0]
    return ConditionResult(
        type="Ready",
        status="False",
        reason=first.reason,
        message="; ".join(f"{part.type}: {part.message}" for part in failing),
    )


def phase_for(parts: Sequence[ConditionResult]) -> str:
    """A one-word summary for ``kubectl get``."""
    by_type = {part.type: part for part in parts}
    if all(part.ok for part in parts):
        return "Ready"
    if any(
        part.status == "False" and (part.reason.endswith("Failed") or part.reason in _DEGRADED)
        for part in parts
    ):
        return "Degraded"
    migrations = by_type.get("MigrationsComplete")
    databases = by_type.get("DatabasesReady")
    if migrations is not None and not migrations.ok and databases is not None and databases.ok:
        return "Migrating"
    return "Provisioning"


__all__ += ["ready_condition"]
