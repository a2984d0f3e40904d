"""Migration Jobs: one per service and image; ``MigrationsComplete`` once all succeed.

Which image migrates a service's database: the image of that service's Deployment (rendered by
``charts/pinstack``: labels ``app.kubernetes.io/part-of=pinstack``, ``pinstack.io/stack=<stack>``,
``app.kubernetes.io/component=<service>``), so ``helm upgrade --set image.tag=NEW`` is the one
command that moves both. The new pods' ``wait-for-schema`` init container holds them until the
Job for their image has run. A service without a Deployment (the chart not installed yet) is
migrated with ``spec.image``. Several Deployments of one service with different images get a Job
each (``pinstack migrate up`` is a no-op for an image older than the schema, e.g. after
``helm rollback``).

A failed Job is not retried: ``MigrationsComplete`` says ``MigrationFailed`` (service, image and
the Job's failure) until the stack's ``migrations.pinstack.io/rerun`` annotation changes; then
the failed Jobs are replaced. Finished Jobs are garbage-collected after
``spec.migrationJobs.ttlSecondsAfterFinished``: ``status.migrations`` remembers what they
migrated, and the database's oid they migrated, so a database recreated by drift repair (a new
oid) is migrated again before the stack is Ready.

A bare API server (tests) runs no Job controller: the Job's status is whatever someone wrote,
and this module only reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pinstack_operator.conditions import ConditionResult
from pinstack_operator.jobs import (
    annotation,
    completion,
    job_failure,
    job_state,
    of_database,
    remembered,
    remembered_job,
    replaced,
)
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.models import ServiceSpec, StackSpec
from pinstack_operator.resources import (
    COMPONENT_LABEL,
    DATABASE_OID_ANNOTATION,
    IMAGE_ANNOTATION,
    IMAGE_SOURCE_ANNOTATION,
    MANAGED_BY,
    PART_OF_LABEL,
    RERUN_ANNOTATION,
    SERVICE_LABEL,
    STACK_LABEL,
    MigrationImage,
    MigrationRun,
    StackRef,
    migration_job,
    migration_service_account,
)

__all__ = [
    "DEPLOYMENT_WATCH_SELECTOR",
    "JOB_WATCH_SELECTOR",
    "MigrationState",
    "ServiceMigration",
    "deployment_selector",
    "images_of_deployments",
    "reconcile_migrations",
]

_KIND = "MigrationsComplete"

# Server-side label selectors of the operator's watches (kopf ``settings.watching``).
JOB_WATCH_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},{COMPONENT_LABEL}=migration"
DEPLOYMENT_WATCH_SELECTOR = f"{PART_OF_LABEL}=pinstack,{STACK_LABEL}"


def deployment_selector(stack: StackRef) -> str:
    """The chart's Deployments of ``stack`` (``pinstack.io/stack`` is the chart's stackName)."""
    return f"{PART_OF_LABEL}=pinstack,{STACK_LABEL}={stack.name}"


@dataclass(frozen=True, kw_only=True)
class ServiceMigration:
    """One service's entry in ``status.migrations``."""

    service: str
    image: str | None  # the image whose migration Job last completed
    completed_at: str | None
    pending: tuple[str, ...]  # images whose Jobs are running or failed
    database_oid: str | None = None  # the database that Job migrated

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"service": self.service}
        if self.image:
            entry["image"] = self.image
        if self.completed_at:
            entry["completedAt"] = self.completed_at
        if self.image and self.database_oid:
            entry["databaseOid"] = self.database_oid
        if self.pending:
            entry["pendingImages"] = list(self.pending)
        return entry


@dataclass(frozen=True, kw_only=True)
class MigrationState:
    condition: ConditionResult
    pending: tuple[str, ...] = ()
    services: tuple[ServiceMigration, ...] = ()

    @property
    def images(self) -> set[str]:
        """Every image some service's schema was last migrated with."""
        return {s.image for s in self.services if s.image}


def images_of_deployments(
    deployments: Iterable[Mapping[str, Any]], service: str
) -> list[MigrationImage]:
    """The images ``service``'s Deployments run (its container, named after the service)."""
    found: dict[str, MigrationImage] = {}
    for deployment in deployments:
        metadata = deployment.get("metadata") or {}
        if (metadata.get("labels") or {}).get(COMPONENT_LABEL) != service:
            continue
        if metadata.get("deletionTimestamp"):
            continue
        pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = pod.get("containers") or []
        container = next((c for c in containers if c.get("name") == service), None)
        if container is None and containers:
            container = containers[0]
        if container is None or not container.get("image"):
            continue
        image = str(container["image"])
        found.setdefault(
            image,
            MigrationImage(
                reference=image,
                pull_policy=str(container.get("imagePullPolicy") or "IfNotPresent"),
                pull_secrets=tuple(
                    str(ref["name"]) for ref in pod.get("imagePullSecrets") or [] if ref.get("name")
                ),
                source=f"Deployment {metadata.get('name')}",
            ),
        )
    return [found[image] for image in sorted(found)]


def _spec_image(spec: StackSpec) -> MigrationImage:
    return MigrationImage(
        reference=spec.image.reference, pull_policy=spec.image.pull_policy, source="spec.image"
    )


def _service_migration(
    service: str,
    *,
    wanted: Sequence[str],
    jobs: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Any] | None,
    oid: str | None = None,
) -> ServiceMigration:
    """Last migrated image: a wanted Job's if one completed, else the latest completed Job's,
    else what the status said before (superseded and finished Jobs are deleted). Only Jobs of
    the database as it is now count."""
    jobs = [job for job in jobs if of_database(job, oid)]
    complete = [job for job in jobs if job_state(job) == "complete"]
    pending = tuple(
        sorted(
            job["metadata"]["annotations"][IMAGE_ANNOTATION]
            for job in jobs
            if job_state(job) != "complete"
            and job["metadata"]["annotations"].get(IMAGE_ANNOTATION) in wanted
        )
    )
    wanted_complete = [
        job for job in complete if job["metadata"]["annotations"].get(IMAGE_ANNOTATION) in wanted
    ]
    candidates = wanted_complete or complete
    if candidates:
        last = max(candidates, key=completion)
        return ServiceMigration(
            service=service,
            image=last["metadata"]["annotations"].get(IMAGE_ANNOTATION),
            completed_at=completion(last) or None,
            pending=pending,
            database_oid=annotation(last, DATABASE_OID_ANNOTATION) or oid,
        )
    previous = previous or {}
    if oid and previous.get("databaseOid") not in (None, oid):
        return ServiceMigration(service=service, image=None, completed_at=None, pending=pending)
    return ServiceMigration(
        service=service,
        image=previous.get("image"),
        completed_at=previous.get("completedAt"),
        pending=pending,
        database_oid=previous.get("databaseOid"),
    )


async def reconcile_migrations(
    api: KubeApi,
    stack: StackRef,
    *,
    spec: StackSpec,
    databases: Mapping[str, str] | None,
    rerun: str = "",
    previous: Sequence[Mapping[str, Any]] = (),
) -> MigrationState:
    """Run a Job per service and wanted image, read their state, drop superseded Jobs.

    ``databases``: each service's database oid once the databases are ready (``None`` before);
    ``rerun``: the stack's re-run annotation; ``previous``: ``status.migrations`` as last
    written (it outlives the Jobs).
    """
    services = spec.migrating_services
    before = {str(entry.get("service")): entry for entry in previous}
    if not services:
        return MigrationState(
            condition=ConditionResult(
                type=_KIND, status="True", reason="NothingToMigrate", message="no migrations"
            )
        )
    if databases is None:
        return MigrationState(
            condition=ConditionResult(
                type=_KIND,
                status="False",
                reason="WaitingForDatabases",
                message="migration Jobs start once the databases are ready",
            ),
            pending=tuple(service.name for service in services),
            services=tuple(
                _service_migration(s.name, wanted=(), jobs=(), previous=before.get(s.name))
                for s in services
            ),
        )
    await api.apply(migration_service_account(stack))
    deployments = await api.list(
        "apps/v1",
        "Deployment",
        namespace=stack.namespace,
        label_selector=deployment_selector(stack),
    )
    existing = await api.list(
        "batch/v1",
        "Job",
        namespace=stack.namespace,
        label_selector=f"{STACK_LABEL}={stack.name},{COMPONENT_LABEL}=migration",
    )
    by_name = {job["metadata"]["name"]: job for job in existing}
    failed: list[str] = []
    running: list[str] = []
    waiting_for: list[str] = []
    results: list[ServiceMigration] = []
    for service in services:
        targets = images_of_deployments(deployments, service.name) or [_spec_image(spec)]
        oid = databases.get(service.name, "")
        jobs = await _ensure_jobs(
            api,
            stack,
            spec=spec,
            service=service,
            targets=targets,
            existing=by_name,
            run=MigrationRun(database_oid=oid, rerun=rerun),
            previous=before.get(service.name),
        )
        states = {job_state(job) for job in jobs}
        if "failed" in states:
            failed.extend(
                f"{service.name} (image {annotation(job, IMAGE_ANNOTATION)} from "
                f"{annotation(job, IMAGE_SOURCE_ANNOTATION)}): Job {job['metadata']['name']} "
                f"{job_failure(job)}"
                for job in jobs
                if job_state(job) == "failed"
            )
        elif "running" in states:
            where = ", ".join(f"{target.reference} from {target.source}" for target in targets)
            running.append(f"{service.name} ({where})")
            waiting_for.append(service.name)
        else:
            await _drop_superseded(api, stack, service=service.name, keep=jobs, existing=existing)
        own = {
            job["metadata"]["name"]: job
            for job in [*existing, *jobs]
            if (job["metadata"].get("labels") or {}).get(SERVICE_LABEL) == service.name
        }
        results.append(
            _service_migration(
                service.name,
                wanted=[target.reference for target in targets],
                jobs=list(own.values()),
                previous=before.get(service.name),
                oid=oid,
            )
        )
    if failed:
        condition = ConditionResult(
            type=_KIND,
            status="False",
            reason="MigrationFailed",
            message=f"migration failed for {'; '.join(failed)}. Not retried: fix the cause, "
            f"then set a new value on the stack's annotation {RERUN_ANNOTATION}",
        )
    elif running:
        condition = ConditionResult(
            type=_KIND,
            status="False",
            reason="MigrationsRunning",
            message=f"waiting for migration Jobs of {'; '.join(running)}",
        )
    else:
        images = sorted({s.image for s in results if s.image})
        condition = ConditionResult(
            type=_KIND,
            status="True",
            reason="Migrated",
            message=f"all services migrated (images: {', '.join(images)})",
        )
    return MigrationState(condition=condition, pending=tuple(waiting_for), services=tuple(results))


async def _ensure_jobs(
    api: KubeApi,
    stack: StackRef,
    *,
    spec: StackSpec,
    service: ServiceSpec,
    targets: Sequence[MigrationImage],
    existing: Mapping[str, Mapping[str, Any]],
    run: MigrationRun,
    previous: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """The Job of every target image: kept, created when missing (unless ``status.migrations``
    says it already ran on this database), replaced when stale (a Job's template is immutable,
    so a re-run is a new Job of the same name)."""
    jobs = []
    for target in targets:
        manifest = migration_job(stack, spec=spec, service=service, image=target, run=run)
        name = manifest["metadata"]["name"]
        found = existing.get(name)
        if found is not None and replaced(found, run):
            await api.delete("batch/v1", "Job", namespace=stack.namespace, name=name)
            found = None
        elif found is None and remembered(previous, image=target.reference, oid=run.database_oid):
            found = remembered_job(manifest, previous or {})
        jobs.append(dict(found) if found is not None else await api.apply(manifest))
    return jobs


async def _drop_superseded(
    api: KubeApi,
    stack: StackRef,
    *,
    service: str,
    keep: Sequence[Mapping[str, Any]],
    existing: Sequence[Mapping[str, Any]],
) -> None:
    """Once a service's wanted Jobs all succeeded, its Jobs for other images go."""
    names = {job["metadata"]["name"] for job in keep}
    for job in existing:
        metadata = job["metadata"]
        if (metadata.get("labels") or {}).get(SERVICE_LABEL) != service:
            continue
        if metadata["name"] not in names:
            await api.delete("batch/v1", "Job", namespace=stack.namespace, name=metadata["name"])
