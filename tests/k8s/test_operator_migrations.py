"""Migration Jobs against a real kube-apiserver + PostgreSQL: no retry loop on failure (an
explicit re-run), their own token-less ServiceAccount and limits, images by digest, finished
Jobs garbage-collected (TTL), and a database recreated by drift repair migrated again."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from typing import Any

import asyncpg

from pinstack_operator.resources import migration_job_name
from tests.polling import eventually

from .conftest import RESYNC_SECONDS, StackFactory
from .test_operator import _complete_job, _condition_is, _ref

IMAGE = "registry.local/pinstack:1.0.0"
RERUN = "migrations.pinstack.io/rerun"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


async def _job(stacks: StackFactory, service: str, image: str = IMAGE) -> dict[str, Any]:
    name = migration_job_name(await _ref(stacks), service=service, image=image)

    async def found() -> dict[str, Any] | None:
        return await stacks.api.find("batch/v1", "Job", namespace=stacks.namespace, name=name)

    return await eventually(found, what=f"Job {name}")


async def _complete(stacks: StackFactory, service: str, image: str = IMAGE) -> None:
    job = await _job(stacks, service, image=image)
    await _complete_job(stacks.api, stacks.namespace, job["metadata"]["name"])


async def _fail_job(stacks: StackFactory, name: str) -> None:
    """What the Job controller writes once ``backoffLimit`` is exhausted."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    await stacks.api.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": stacks.namespace},
            "status": {
                "startTime": now,
                "failed": 5,
                "conditions": [
                    {"type": "FailureTarget", "status": "True", "lastProbeTime": now,
                     "lastTransitionTime": now, "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit"},
                    {"type": "Failed", "status": "True", "lastProbeTime": now,
                     "lastTransitionTime": now, "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit"},
                ],
            },
        },
        subresource="status",
    )  # fmt: skip


async def _apply_current(stacks: StackFactory, *, partitions: int = 0, rerun: str = "") -> int:
    """Apply the stack as it is, with more partitions on its first topic and/or the re-run
    annotation (what ``kubectl edit``/``kubectl annotate`` do); returns its generation."""
    stack = await stacks.get()
    assert stack is not None
    spec = stack["spec"]
    spec["topics"][0]["partitions"] += partitions
    metadata: dict[str, Any] = {"name": "stack", "namespace": stacks.namespace}
    if rerun:
        metadata["annotations"] = {RERUN: rerun}
    applied = await stacks.api.apply({"apiVersion": stack["apiVersion"], "kind": stack["kind"],
                                      "metadata": metadata, "spec": spec})  # fmt: skip
    return int(applied["metadata"]["generation"])


async def _pass_observed(stacks: StackFactory) -> None:
    """Make the operator run a pass (a spec change) and wait until its status observes it."""
    generation = await _apply_current(stacks, partitions=1)

    async def observed() -> bool:
        current = await stacks.get()
        return ((current or {}).get("status") or {}).get("observedGeneration") == generation

    await eventually(observed, what=f"a pass observing generation {generation}")


async def _retried_for(stacks: StackFactory, text: str) -> list[str]:
    """kopf's progress records (annotations) of handlers that failed and will be retried
    with ``text`` in their error."""
    stack = await stacks.get()
    annotations = ((stack or {}).get("metadata") or {}).get("annotations") or {}
    records = [
        json.loads(value)
        for key, value in annotations.items()
        if key.startswith("pinstack.io/") and value.startswith("{")
    ]
    return [str(r.get("message")) for r in records if text in str(r.get("message") or "")]


async def test_failed_migration_is_reported_and_rerun_only_on_request(
    stacks: StackFactory,
) -> None:
    await stacks.api.apply(stacks.manifest())
    user = await _job(stacks, "user")
    await _complete(stacks, "auth")
    await _fail_job(stacks, user["metadata"]["name"])

    await eventually(
        lambda: _reason_is(stacks, "MigrationFailed"), what="MigrationsComplete: MigrationFailed"
    )
    failed = await stacks.condition("MigrationsComplete") or {}
    assert f"user (image {IMAGE} from spec.image)" in failed["message"]
    assert "BackoffLimitExceeded: Job has reached the specified backoff limit" in failed["message"]
    assert RERUN in failed["message"]
    stack = await stacks.get()
    assert stack is not None
    assert stack["status"]["phase"] == "Degraded"

    # Several passes later: the same failed Job, and kopf is not retrying the handler.
    for _ in range(3):
        await _pass_observed(stacks)
    again = await _job(stacks, "user")
    assert again["metadata"]["uid"] == user["metadata"]["uid"]
    assert await _retried_for(stacks, "MigrationsComplete") == []
    assert (await stacks.condition("MigrationsComplete") or {})["reason"] == "MigrationFailed"

    # The explicit re-run: a new Job replaces the failed one, and the stack waits for it.
    await _apply_current(stacks, rerun="after-fixing-it")

    async def replaced() -> dict[str, Any] | None:
        job = await _job(stacks, "user")
        return job if job["metadata"]["uid"] != user["metadata"]["uid"] else None

    rerun = await eventually(replaced, what="the failed Job replaced")
    assert rerun["metadata"]["annotations"][RERUN] == "after-fixing-it"
    await eventually(lambda: _reason_is(stacks, "MigrationsRunning"), what="MigrationsRunning")
    await _complete_job(stacks.api, stacks.namespace, rerun["metadata"]["name"])
    await _condition_is(stacks, "Ready", "True")


async def _reason_is(stacks: StackFactory, reason: str) -> bool:
    return (await stacks.condition("MigrationsComplete") or {}).get("reason") == reason


async def test_migration_jobs_run_as_their_own_account_with_limits_and_a_digest_image(
    stacks: StackFactory,
) -> None:
    digest = "sha256:" + "ab" * 32
    image = {"repository": "registry.local:5000/pinstack/app", "tag": "1.0.0", "digest": digest}
    manifest = stacks.manifest(
        image=image,
        imagePullSecrets=[{"name": "stack-pull"}],
        migrationJobs={"activeDeadlineSeconds": 600, "backoffLimit": 2},
    )
    await stacks.api.apply(manifest)
    reference = f"registry.local:5000/pinstack/app@{digest}"
    job = await _job(stacks, "user", image=reference)
    assert _DNS_LABEL.match(job["metadata"]["name"])
    assert len(job["metadata"]["name"]) <= 63
    labels = {**job["metadata"]["labels"], **job["spec"]["template"]["metadata"]["labels"]}
    assert all(_LABEL_VALUE.match(value) and len(value) <= 63 for value in labels.values())
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["backoffLimit"] == 2
    assert spec["ttlSecondsAfterFinished"] == 86400  # the CRD's default
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "stack-migrations"
    assert pod["automountServiceAccountToken"] is False
    assert pod["imagePullSecrets"] == [{"name": "stack-pull"}]
    container = pod["containers"][0]
    assert container["image"] == reference
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"},
    }  # fmt: skip
    account = await stacks.api.get(
        "v1", "ServiceAccount", namespace=stacks.namespace, name="stack-migrations"
    )
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["ownerReferences"][0]["uid"] == (await _ref(stacks)).uid

    for service in ("user", "auth"):
        await _complete(stacks, service, image=reference)
    await _condition_is(stacks, "Ready", "True")
    stack = await stacks.get()
    assert stack is not None
    assert stack["status"]["imageTag"] == digest
    assert {entry["image"] for entry in stack["status"]["migrations"]} == {reference}

    # Resources are the stack's to set.
    limits = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}}
    manifest["spec"]["migrationJobs"]["resources"] = limits
    manifest["spec"]["image"] = {"repository": "registry.local/pinstack", "tag": "1.1.0"}
    await stacks.api.apply(manifest)
    job = await _job(stacks, "user", image="registry.local/pinstack:1.1.0")
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"] == limits


async def test_finished_jobs_removed_by_their_ttl_are_not_run_again(stacks: StackFactory) -> None:
    await stacks.api.apply(stacks.manifest())
    for service in ("user", "auth"):
        await _complete(stacks, service)
    await _condition_is(stacks, "Ready", "True")
    stack = await stacks.get()
    assert stack is not None
    migrated = stack["status"]["migrations"]

    # What the TTL controller does once ttlSecondsAfterFinished has passed.
    for job in await stacks.api.list("batch/v1", "Job", namespace=stacks.namespace):
        await stacks.api.delete("batch/v1", "Job", namespace=stacks.namespace,
                                name=job["metadata"]["name"])  # fmt: skip
    await _pass_observed(stacks)
    await _pass_observed(stacks)
    assert await stacks.api.list("batch/v1", "Job", namespace=stacks.namespace) == []
    stack = await stacks.get()
    assert stack is not None
    assert stack["status"]["migrations"] == migrated
    assert (await stacks.condition("Ready") or {})["status"] == "True"


async def _database_oid(postgres: Any, name: str) -> str | None:
    conn = await asyncpg.connect(postgres.dsn())
    try:
        oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return None if oid is None else str(oid)


async def test_database_recreated_by_drift_repair_is_migrated_again_before_ready(
    stacks: StackFactory, postgres: Any
) -> None:
    await stacks.api.apply(stacks.manifest())
    for service in ("user", "auth"):
        await _complete(stacks, service)
    await _condition_is(stacks, "Ready", "True")
    before = await _database_oid(postgres, stacks.database("user"))

    await asyncio.to_thread(postgres.drop_database, stacks.database("user"))

    async def recreated() -> str | None:
        oid = await _database_oid(postgres, stacks.database("user"))
        return oid if oid not in (None, before) else None

    oid = await eventually(recreated, within=RESYNC_SECONDS * 10, what="database recreated")

    async def rerun() -> dict[str, Any] | None:
        job = await _job(stacks, "user")
        recorded = job["metadata"]["annotations"].get("pinstack.io/database-oid")
        return job if recorded == oid else None

    job = await eventually(rerun, what="the user migration Job run again on the new database")

    async def pending() -> dict[str, Any] | None:
        stack = await stacks.get()
        user = next(e for e in (stack or {})["status"]["migrations"] if e["service"] == "user")
        return user if user.get("pendingImages") == [IMAGE] else None

    # The new database holds no schema yet: nothing migrated it, and the stack is not Ready.
    assert await eventually(pending, what="status.migrations: user pending") == {
        "service": "user", "pendingImages": [IMAGE],
    }  # fmt: skip
    assert (await stacks.condition("Ready") or {})["status"] == "False"
    await _complete_job(stacks.api, stacks.namespace, job["metadata"]["name"])
    await _condition_is(stacks, "Ready", "True")
    stack = await stacks.get()
    assert stack is not None
    user = next(e for e in stack["status"]["migrations"] if e["service"] == "user")
    assert user["databaseOid"] == oid
