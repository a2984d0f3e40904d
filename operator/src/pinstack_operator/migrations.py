"""Migration Jobs: one per service and image version; ``MigrationsComplete`` once all succeed.

A bare API server (tests) runs no Job controller: the Job's status is whatever someone wrote,
and this module only reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pinstack_operator.conditions import ConditionResult
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.models import StackSpec
from pinstack_operator.resources import (
    COMPONENT_LABEL,
    STACK_LABEL,
    StackRef,
    migration_job,
)

__all__ = ["MigrationState", "job_state", "reconcile_migrations"]

_KIND = "MigrationsComplete"


@dataclass(frozen=True, kw_only=True)
class MigrationState:
    condition: ConditionResult
    pending: tuple[str, ...] = ()


def job_state(job: Mapping[str, Any]) -> str:
    """``complete``, ``failed`` or ``running`` from a Job's status."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "complete"
        if condition.get("type") == "Failed":
            return "failed"
    if int(status.get("succeeded") or 0) >= 1:
        return "complete"
    return "running"


async def reconcile_migrations(
    api: KubeApi, stack: StackRef, *, spec: StackSpec, databases_ready: bool
) -> MigrationState:
    """Apply the current image's Jobs, read their state, drop superseded Jobs once done."""
    services = spec.migrating_services
    if not services:
        return MigrationState(
            condition=ConditionResult(
                type=_KIND, status="True", reason="NothingToMigrate", message="no migrations"
            )
        )
    if not databases_ready:
        return MigrationState(
            condition=ConditionResult(
                type=_KIND,
                status="False",
                reason="WaitingForDatabases",
                message="migration Jobs start once the databases are ready",
            ),
            pending=tuple(service.name for service in services),
        )
    states: dict[str, str] = {}
    current: set[str] = set()
    for service in services:
        manifest = migration_job(stack, spec=spec, service=service)
        current.add(manifest["metadata"]["name"])
        existing = await api.find(
            "batch/v1", "Job", namespace=stack.namespace, name=manifest["metadata"]["name"]
        )
        job = existing if existing is not None else await api.apply(manifest)
        states[service.name] = job_state(job)
    failed = sorted(name for name, state in states.items() if state == "failed")
    running = sorted(name for name, state in states.items() if state == "running")
    if failed:
        condition = ConditionResult(
            type=_KIND,
            status="False",
            reason="MigrationFailed",
            message=f"migration Job failed for {', '.join(failed)} (image {spec.image.reference}); "
            "see the Job's pod logs",
        )
    elif running:
        condition = ConditionResult(
            type=_KIND,
            status="False",
            reason="MigrationsRunning",
            message=f"waiting for migration Jobs of {', '.join(running)} "
            f"(image {spec.image.reference})",
        )
    else:
        condition = ConditionResult(
            type=_KIND,
            status="True",
            reason="Migrated",
            message=f"all services migrated for image {spec.image.reference}",
        )
        await _drop_superseded(api, stack, keep=current)
    return MigrationState(condition=condition, pending=tuple(running))


async def _drop_superseded(api: KubeApi, stack: StackRef, *, keep: set[str]) -> None:
    selector = f"{STACK_LABEL}={stack.name},{COMPONENT_LABEL}=migration"
    for job in await api.list(
        "batch/v1", "Job", namespace=stack.namespace, label_selector=selector
    ):
        name = job["metadata"]["name"]
        if name not in keep:
            await api.delete("batch/v1", "Job", namespace=stack.namespace, name=name)
