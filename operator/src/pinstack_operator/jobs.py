"""Reading migration Jobs: their state and failure, what they were created for (image,
database oid, re-run request), and the Jobs ``status.migrations`` remembers after the TTL
controller removed them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pinstack_operator.resources import DATABASE_OID_ANNOTATION, RERUN_ANNOTATION, MigrationRun

__all__ = [
    "annotation",
    "completion",
    "job_failure",
    "job_state",
    "of_database",
    "remembered",
    "remembered_job",
    "replaced",
]


def job_failure(job: Mapping[str, Any]) -> str:
    """Why a failed Job failed, from its ``Failed`` condition (e.g. ``BackoffLimitExceeded``)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            reason, message = condition.get("reason") or "", condition.get("message") or ""
            return ": ".join(part for part in (reason, message) if part) or "failed"
    return "failed"


def job_state(job: Mapping[str, Any]) -> str:
    """``complete``, ``failed`` or ``running`` from a Job's status (``running`` while a
    replaced Job is still being deleted)."""
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "running"
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


def completion(job: Mapping[str, Any]) -> str:
    return str((job.get("status") or {}).get("completionTime") or "")


def annotation(job: Mapping[str, Any], key: str) -> str:
    return str(((job.get("metadata") or {}).get("annotations") or {}).get(key) or "")


def of_database(job: Mapping[str, Any], oid: str | None) -> bool:
    """Whether ``job`` migrated the database as it is now (Jobs of earlier operator versions
    carry no oid and are taken as such)."""
    recorded = annotation(job, DATABASE_OID_ANNOTATION)
    return not recorded or not oid or recorded == oid


def remembered(previous: Mapping[str, Any] | None, *, image: str, oid: str | None) -> bool:
    """Whether ``status.migrations`` says ``image`` migrated this very database (its Job may be
    gone: ``ttlSecondsAfterFinished``)."""
    previous = previous or {}
    return bool(oid) and previous.get("image") == image and previous.get("databaseOid") == oid


def replaced(job: Mapping[str, Any], run: MigrationRun) -> bool:
    """A Job to run again: it migrated a database since recreated (another oid), or it failed
    and the stack asks for a re-run it was not created under."""
    if not of_database(job, run.database_oid):
        return True
    return job_state(job) == "failed" and annotation(job, RERUN_ANNOTATION) != run.rerun


def remembered_job(manifest: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """A finished Job the TTL controller removed, as ``status.migrations`` remembers it."""
    return {
        "metadata": {
            "name": manifest["metadata"]["name"],
            "labels": dict(manifest["metadata"]["labels"]),
            "annotations": dict(manifest["metadata"]["annotations"]),
        },
        "status": {"succeeded": 1, "completionTime": previous.get("completedAt") or ""},
    }
