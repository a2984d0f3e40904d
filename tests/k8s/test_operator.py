"""The PinstackStack operator against a real kube-apiserver + etcd, PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import yaml
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_devinfra.helm import helm_template_objects
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.models import StackSpec
from pinstack_operator.resources import StackRef, migration_job_name
from tests.polling import eventually

from .conftest import REPO, RESYNC_SECONDS, StackFactory

EXAMPLE = REPO / "manifests" / "examples" / "pinstackstack.yaml"
IMAGE = "registry.local/pinstack:1.0.0"


def _decode(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def _databases(postgres: Any) -> set[str]:
    conn = await asyncpg.connect(postgres.dsn())
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database")
    finally:
        await conn.close()
    return {row["datname"] for row in rows}


async def _database_oids(postgres: Any) -> dict[str, str]:
    conn = await asyncpg.connect(postgres.dsn())
    try:
        rows = await conn.fetch("SELECT datname, oid FROM pg_database")
    finally:
        await conn.close()
    return {row["datname"]: str(row["oid"]) for row in rows}


async def _roles(postgres: Any) -> set[str]:
    conn = await asyncpg.connect(postgres.dsn())
    try:
        rows = await conn.fetch("SELECT rolname FROM pg_roles")
    finally:
        await conn.close()
    return {row["rolname"] for row in rows}


def _admin(kafka: Any) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka.bootstrap_servers})


async def _topics(kafka: Any) -> dict[str, int]:
    def run() -> dict[str, int]:
        metadata = _admin(kafka).list_topics(timeout=10)
        return {name: len(topic.partitions) for name, topic in metadata.topics.items()}

    return await asyncio.to_thread(run)


async def _topic_config(kafka: Any, topic: str) -> dict[str, str]:
    def run() -> dict[str, str]:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        admin = _admin(kafka)  # keep the handle alive until the future resolves
        future = admin.describe_configs([resource])[resource]
        return {key: entry.value for key, entry in future.result(timeout=10).items()}

    return await asyncio.to_thread(run)


async def _complete_job(api: KubeApi, namespace: str, name: str) -> None:
    """A bare API server runs no Job controller: write the status a finished Job would have."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    await api.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace},
            "status": {
                "startTime": now,
                "completionTime": now,
                "succeeded": 1,
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now,
                     "lastTransitionTime": now, "reason": "CompletionsReached", "message": ""},
                    {"type": "Complete", "status": "True", "lastProbeTime": now,
                     "lastTransitionTime": now, "reason": "CompletionsReached", "message": ""},
                ],
            },
        },
        subresource="status",
    )  # fmt: skip


async def _condition_is(stacks: StackFactory, kind: str, status: str, name: str = "stack") -> Any:
    async def probe() -> dict[str, Any] | None:
        condition = await stacks.condition(kind, name)
        return condition if condition and condition["status"] == status else None

    return await eventually(probe, what=f"{kind}={status}")


async def _ref(stacks: StackFactory, name: str = "stack") -> StackRef:
    stack = await stacks.get(name)
    assert stack is not None
    return StackRef(name=name, namespace=stacks.namespace, uid=stack["metadata"]["uid"])


async def _complete_all_jobs(stacks: StackFactory, image: str) -> None:
    ref = await _ref(stacks)
    for service in ("user", "auth"):
        name = migration_job_name(ref, service=service, image=image)

        async def exists(job: str = name) -> dict[str, Any] | None:
            return await stacks.api.find("batch/v1", "Job", namespace=stacks.namespace, name=job)

        await eventually(exists, what=f"Job {name}")
        await _complete_job(stacks.api, stacks.namespace, name)


async def test_stack_provisions_databases_secrets_topics_jobs_and_monitors(
    stacks: StackFactory, postgres: Any, kafka: Any
) -> None:
    await stacks.api.apply(stacks.manifest())
    await _condition_is(stacks, "DatabasesReady", "True")
    await _condition_is(stacks, "TopicsReady", "True")
    migrating = await _condition_is(stacks, "MigrationsComplete", "False")
    assert migrating["reason"] == "MigrationsRunning"

    assert {stacks.database("user"), stacks.database("auth")} <= await _databases(postgres)
    assert {stacks.database("user"), stacks.database("auth")} <= await _roles(postgres)

    ref = await _ref(stacks)
    db_secret = await stacks.secret("stack-user-db")
    assert db_secret is not None
    # Secrets outlive the stack (reclaimPolicy decides): ownership is a label + annotation.
    assert "ownerReferences" not in db_secret["metadata"]
    assert db_secret["metadata"]["labels"]["pinstack.io/stack"] == "stack"
    assert db_secret["metadata"]["annotations"]["pinstack.io/stack-uid"] == ref.uid
    creds = _decode(db_secret)
    assert creds["username"] == creds["database"] == stacks.database("user")
    assert creds["database-url"].startswith("postgresql+asyncpg://")
    assert len(creds["password"]) >= 24
    assert db_secret["metadata"]["managedFields"][0]["manager"] == "pinstack-operator"

    signing = _decode(await stacks.secret("stack-jwt-signing-key") or {})
    key = serialization.load_pem_private_key(signing["signing-key.pem"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert signing["kid"]
    assert _decode(await stacks.secret("stack-internal-token") or {})["token"]

    topics = await _topics(kafka)
    assert topics[stacks.topic("user")] == 2
    assert topics[stacks.topic("post")] == 1
    assert (await _topic_config(kafka, stacks.topic("user")))["retention.ms"] == "3600000"

    job_name = migration_job_name(ref, service="user", image="registry.local/pinstack:1.0.0")
    job = await stacks.api.get("batch/v1", "Job", namespace=stacks.namespace, name=job_name)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["pinstack", "migrate", "up", "--service", "user"]
    assert container["image"] == "registry.local/pinstack:1.0.0"
    assert job["metadata"]["ownerReferences"][0]["uid"] == ref.uid
    monitors = await stacks.api.list(
        "monitoring.coreos.com/v1", "ServiceMonitor", namespace=stacks.namespace
    )
    assert {m["metadata"]["name"] for m in monitors} == {
        "stack-user-operator", "stack-auth-operator", "stack-gateway-operator",
    }  # fmt: skip
    assert monitors[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = await stacks.api.list(
        "monitoring.coreos.com/v1", "PrometheusRule", namespace=stacks.namespace
    )
    assert [r["metadata"]["name"] for r in rules] == ["stack-alerts-operator"]
    assert (await stacks.condition("MonitoringReady") or {})["status"] == "True"
    stack = await stacks.get()
    assert stack is not None
    assert stack["status"]["phase"] == "Migrating"
    assert (await stacks.condition("Ready") or {})["status"] == "False"

    # Migrations finish -> the condition flips and the stack is Ready.
    await _complete_all_jobs(stacks, "registry.local/pinstack:1.0.0")
    await _condition_is(stacks, "MigrationsComplete", "True")
    ready = await _condition_is(stacks, "Ready", "True")
    stack = await stacks.get()
    assert stack is not None
    assert stack["status"]["phase"] == "Ready"
    assert stack["status"]["imageTag"] == "1.0.0"
    assert ready["observedGeneration"] == stack["metadata"]["generation"]
    # kopf's bookkeeping lives in annotations; the strict status holds only our fields.
    assert set(stack["status"]) <= {
        "observedGeneration", "phase", "conditions", "databases", "topics", "imageTag",
        "migrations",
    }  # fmt: skip
    oids = await _database_oids(postgres)
    assert stack["status"]["migrations"] == [
        {"service": "user", "image": "registry.local/pinstack:1.0.0",
         "completedAt": stack["status"]["migrations"][0]["completedAt"],
         "databaseOid": oids[stacks.database("user")]},
        {"service": "auth", "image": "registry.local/pinstack:1.0.0",
         "completedAt": stack["status"]["migrations"][1]["completedAt"],
         "databaseOid": oids[stacks.database("auth")]},
    ]  # fmt: skip
    assert "pinstack.io/finalizer" in stack["metadata"]["finalizers"]
    assert any(key.startswith("pinstack.io/") for key in stack["metadata"]["annotations"])

    # `kubectl get pinstackstacks` columns.
    table = await stacks.api.table(
        "pinstack.io/v1alpha1", "PinstackStack", namespace=stacks.namespace
    )
    columns = [column["name"] for column in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Ready", "Phase", "Reason", "Image"]
    assert "Age" in columns
    assert table["rows"][0]["cells"][:4] == ["stack", "True", "Ready", "AllReady"]


async def test_example_manifest_is_accepted_by_the_api_server(api: KubeApi) -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    accepted = await api.apply(example, dry_run=True)
    assert accepted["spec"]["reclaimPolicy"] == "Retain"
    assert accepted["spec"]["postgres"]["adminCredentialsSecretRef"]["usernameKey"] == "username"
    assert StackSpec.parse(accepted["spec"]).database_services[0].database == "pinstack_user"


async def test_new_image_runs_new_migration_jobs(stacks: StackFactory) -> None:
    await stacks.api.apply(stacks.manifest())
    await _complete_all_jobs(stacks, "registry.local/pinstack:1.0.0")
    await _condition_is(stacks, "Ready", "True")

    image = {"repository": "registry.local/pinstack", "tag": "1.1.0"}
    await stacks.api.apply(stacks.manifest(image=image))
    condition = await _condition_is(stacks, "MigrationsComplete", "False")
    assert "1.1.0" in condition["message"]
    await _complete_all_jobs(stacks, "registry.local/pinstack:1.1.0")
    await _condition_is(stacks, "MigrationsComplete", "True")

    async def only_new_jobs() -> bool:
        jobs = await stacks.api.list("batch/v1", "Job", namespace=stacks.namespace)
        images = {j["metadata"]["annotations"]["pinstack.io/image"] for j in jobs}
        return images == {"registry.local/pinstack:1.1.0"}

    await eventually(only_new_jobs, what="superseded Jobs removed")


def _chart_deployments(namespace: str, tag: str) -> list[dict[str, Any]]:
    """The Deployments ``helm upgrade pinstack charts/pinstack --set image.tag=<tag>`` writes
    (the components of the test stack)."""
    objects = helm_template_objects(
        REPO / "charts" / "pinstack",
        namespace=namespace,
        set_values={
            "stackName": "stack",
            "image.repository": "registry.local/pinstack",
            "image.tag": tag,
            "imagePullSecrets[0].name": "regcred",
        },
    )
    return [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] in {"user", "auth", "gateway"}
    ]


async def _helm_upgrade(stacks: StackFactory, tag: str) -> None:
    for deployment in _chart_deployments(stacks.namespace, tag):
        await stacks.api.apply(deployment)


async def _migrated(stacks: StackFactory, image: str) -> dict[str, Any]:
    """Wait until ``status.migrations`` says every service was last migrated with ``image``."""

    async def probe() -> dict[str, Any] | None:
        stack = await stacks.get()
        entries = ((stack or {}).get("status") or {}).get("migrations") or []
        done = {e["service"]: e for e in entries if e.get("image") == image}
        return done if set(done) == {"user", "auth"} else None

    return await eventually(probe, what=f"status.migrations at {image}")


async def test_helm_upgrade_alone_migrates_with_the_deployments_image_first(
    stacks: StackFactory,
) -> None:
    """One command moves both: the chart's Deployments name the image, the operator runs that
    image's migration Jobs (the new pods wait for them in their wait-for-schema init container).
    ``spec.image`` only covers services without a Deployment yet."""
    old, new = "registry.local/pinstack:1.0.0", "registry.local/pinstack:2.0.0"
    await stacks.api.apply(stacks.manifest())
    await _complete_all_jobs(stacks, old)
    await _condition_is(stacks, "Ready", "True")
    await _migrated(stacks, old)

    # `helm upgrade --set image.tag=2.0.0`; the PinstackStack is not touched.
    await _helm_upgrade(stacks, "2.0.0")

    async def waiting_for_user() -> dict[str, Any] | None:
        # A pass may run between the Deployments' writes and see only some of them.
        condition = await stacks.condition("MigrationsComplete") or {}
        return (
            condition
            if f"{new} from Deployment pinstack-user" in condition.get("message", "")
            else None
        )

    condition = await eventually(waiting_for_user, what="waiting for the user Job of 2.0.0")
    assert condition["status"] == "False"
    ref = await _ref(stacks)
    job = await stacks.api.get("batch/v1", "Job", namespace=stacks.namespace,
                               name=migration_job_name(ref, service="user", image=new))  # fmt: skip
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == new
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert job["metadata"]["annotations"]["pinstack.io/image-source"] == "Deployment pinstack-user"
    stack = await stacks.get()
    assert stack is not None
    user = next(e for e in stack["status"]["migrations"] if e["service"] == "user")
    assert user["image"] == old  # the schema is still at the old image's head
    assert user["pendingImages"] == [new]

    await _complete_all_jobs(stacks, new)
    await _condition_is(stacks, "MigrationsComplete", "True")
    await _migrated(stacks, new)
    stack = await stacks.get()
    assert stack is not None
    assert stack["status"]["imageTag"] == "2.0.0"
    assert stack["spec"]["image"]["tag"] == "1.0.0"

    async def only(image: str) -> bool:
        jobs = await stacks.api.list("batch/v1", "Job", namespace=stacks.namespace)
        return {j["metadata"]["annotations"]["pinstack.io/image"] for j in jobs} == {image}

    await eventually(lambda: only(new), what="superseded Jobs removed")

    # `helm rollback`: the old image's Job runs again (`migrate up` is a no-op for a schema
    # ahead of the image) and the status says so.
    await _helm_upgrade(stacks, "1.0.0")
    await _condition_is(stacks, "MigrationsComplete", "False")
    await _complete_all_jobs(stacks, old)
    await _condition_is(stacks, "MigrationsComplete", "True")
    await _migrated(stacks, old)
    await eventually(lambda: only(old), what="Jobs of the rolled-back image only")


async def test_raising_partitions_grows_the_topic(stacks: StackFactory, kafka: Any) -> None:
    await stacks.api.apply(stacks.manifest())
    await _condition_is(stacks, "TopicsReady", "True")
    manifest = stacks.manifest()
    manifest["spec"]["topics"][0]["partitions"] = 5
    await stacks.api.apply(manifest)

    async def grown() -> bool:
        return (await _topics(kafka)).get(stacks.topic("user")) == 5

    await eventually(grown, what="topic grown to 5 partitions")

    async def observed() -> bool:
        stack = await stacks.get()
        assert stack is not None
        generation = stack["metadata"]["generation"]
        topics = await stacks.condition("TopicsReady") or {}
        return (
            generation == 2
            and stack["status"]["observedGeneration"] == generation
            and topics.get("observedGeneration") == generation
            and topics.get("status") == "True"
        )

    await eventually(observed, what="status observes generation 2")


async def test_invalid_specs_are_refused_with_readable_messages(stacks: StackFactory) -> None:
    await stacks.api.apply(stacks.manifest())
    shrunk = stacks.manifest()
    shrunk["spec"]["topics"][0]["partitions"] = 1
    with pytest.raises(ApiException) as refused:
        await stacks.api.apply(shrunk)
    assert refused.value.status == 422
    assert "partitions may not decrease" in str(refused.value.body)

    renamed = stacks.manifest()
    renamed["spec"]["services"][0]["database"] = "another_name"
    with pytest.raises(ApiException) as refused:
        await stacks.api.apply(renamed)
    assert "database name is immutable" in str(refused.value.body)

    bad = stacks.manifest(name="bad", reclaimPolicy="Sometimes")
    bad["spec"]["services"].append({"name": "post", "database": "Bad-Name"})
    with pytest.raises(ApiException) as refused:
        await stacks.api.apply(bad)
    body = str(refused.value.body)
    assert 'spec.reclaimPolicy: Unsupported value: \\"Sometimes\\"' in body
    assert "spec.services[3].database: Invalid value" in body

    gateway_db = stacks.manifest(name="bad")
    gateway_db["spec"]["services"][2]["database"] = "gateway_db"
    with pytest.raises(ApiException) as refused:
        await stacks.api.apply(gateway_db)
    assert "every service but the gateway needs a database" in str(refused.value.body)

    shared = stacks.manifest(name="bad")
    shared["spec"]["services"][1]["database"] = stacks.database("user")
    with pytest.raises(ApiException) as refused:
        await stacks.api.apply(shared)
    assert "each service needs its own database name" in str(refused.value.body)

    for reserved, message in (
        ("postgres", "postgres, template0 and template1 are PostgreSQL's own databases"),
        ("template0", "postgres, template0 and template1 are PostgreSQL's own databases"),
        ("template1", "postgres, template0 and template1 are PostgreSQL's own databases"),
        ("pg_user", "role names starting with pg_ are reserved by PostgreSQL"),
    ):
        claimed = stacks.manifest(name="bad")
        claimed["spec"]["services"][0]["database"] = reserved
        with pytest.raises(ApiException) as refused:
            await stacks.api.apply(claimed)
        assert refused.value.status == 422, reserved
        assert message in str(refused.value.body), reserved

    untagged = stacks.manifest(name="bad", image={"repository": "registry.local/pinstack"})
    with pytest.raises(ApiException) as refused:
        await stacks.api.apply(untagged)
    assert "image needs a tag or a digest" in str(refused.value.body)


_SECRETS = ("stack-user-db", "stack-auth-db", "stack-jwt-signing-key", "stack-internal-token")


async def _collect_garbage(api: KubeApi, namespace: str, owner_uid: str) -> list[str]:
    """What a real cluster's garbage collector does once an owner is gone (a bare API server
    runs no controllers): delete every object whose owner references name ``owner_uid``."""
    collected = []
    for api_version, kind in (("v1", "Secret"), ("batch/v1", "Job"),
                              ("monitoring.coreos.com/v1", "ServiceMonitor"),
                              ("monitoring.coreos.com/v1", "PrometheusRule")):  # fmt: skip
        for item in await api.list(api_version, kind, namespace=namespace):
            owners = item["metadata"].get("ownerReferences") or []
            if any(owner["uid"] == owner_uid for owner in owners):
                name = item["metadata"]["name"]
                await api.delete(api_version, kind, namespace=namespace, name=name)
                collected.append(f"{kind}/{name}")
    return collected


async def _delete_stack(stacks: StackFactory, name: str = "stack") -> None:
    await stacks.api.delete("pinstack.io/v1alpha1", "PinstackStack", namespace=stacks.namespace,
                            name=name)  # fmt: skip


async def test_delete_with_retain_keeps_databases_topics_and_secrets_for_the_next_stack(
    stacks: StackFactory, postgres: Any, kafka: Any
) -> None:
    await stacks.api.apply(stacks.manifest())
    await _condition_is(stacks, "DatabasesReady", "True")
    await _condition_is(stacks, "TopicsReady", "True")
    first = await _ref(stacks)
    before = {name: _decode(await stacks.secret(name) or {}) for name in _SECRETS}
    assert all(before.values())
    # A Secret written by an earlier operator version still names the stack as its owner.
    owned = {"metadata": {"ownerReferences": [first.owner_reference()]}}
    await stacks.api.patch(
        "v1", "Secret", namespace=stacks.namespace, name="stack-internal-token", patch=owned
    )

    await _delete_stack(stacks)
    await eventually(stacks.gone, what="stack deleted (finalizer released)")
    collected = await _collect_garbage(stacks.api, stacks.namespace, first.uid)
    assert not [item for item in collected if item.startswith("Secret/")], collected
    assert stacks.database("user") in await _databases(postgres)
    assert stacks.database("user") in await _roles(postgres)
    assert stacks.topic("user") in await _topics(kafka)
    for name in _SECRETS:
        secret = await stacks.secret(name)
        assert secret is not None, name
        assert not secret["metadata"].get("ownerReferences"), name
        assert secret["metadata"]["labels"]["pinstack.io/stack"] == "stack"
        assert secret["metadata"]["annotations"]["pinstack.io/stack-uid"] == first.uid

    # The same stack again: it adopts the Secrets (same passwords, signing key, token).
    await stacks.api.apply(stacks.manifest())
    await _condition_is(stacks, "DatabasesReady", "True")
    second = await _ref(stacks)
    assert second.uid != first.uid
    # Its Secret names the first stack, so the databases and roles marked as the first
    # stack's are its to adopt; they are re-marked.
    conn = await asyncpg.connect(postgres.dsn())
    try:
        markers = await conn.fetchrow(
            "SELECT shobj_description(d.oid, 'pg_database') AS db, "
            "shobj_description(r.oid, 'pg_authid') AS role FROM pg_database d, pg_roles r "
            "WHERE d.datname = $1 AND r.rolname = $1",
            stacks.database("user"),
        )
    finally:
        await conn.close()
    assert markers is not None
    assert json.loads(markers["db"])["pinstack.io/stack-uid"] == second.uid
    assert json.loads(markers["role"])["pinstack.io/stack-uid"] == second.uid
    for name in _SECRETS:
        secret = await stacks.secret(name)
        assert secret is not None
        assert _decode(secret) == before[name], name
        assert secret["metadata"]["annotations"]["pinstack.io/stack-uid"] == second.uid


async def test_delete_with_delete_policy_drops_databases_roles_topics_and_secrets(
    stacks: StackFactory, postgres: Any, kafka: Any
) -> None:
    await stacks.api.apply(stacks.manifest(reclaimPolicy="Delete"))
    await _condition_is(stacks, "DatabasesReady", "True")
    await _condition_is(stacks, "TopicsReady", "True")
    await _delete_stack(stacks)
    await eventually(stacks.gone, what="stack deleted (finalizer released)")
    databases = await _databases(postgres)
    assert stacks.database("user") not in databases
    assert stacks.database("auth") not in databases
    assert stacks.database("user") not in await _roles(postgres)
    # Deleted by the operator itself, not left to the garbage collector.
    for name in _SECRETS:
        assert await stacks.secret(name) is None, name
    assert await stacks.secret("pg-admin") is not None  # the user's, never touched

    async def topics_gone() -> bool:
        names = set(await _topics(kafka))
        return not names & {stacks.topic("user"), stacks.topic("post")}

    await eventually(topics_gone, what="topics deleted")


async def _reclaim_retries(stacks: StackFactory, *, at_least: int = 3) -> bool:
    """Whether kopf's progress annotation counts ``at_least`` retries of the reclaim handler."""
    stack = await stacks.get()
    annotations = ((stack or {}).get("metadata") or {}).get("annotations") or {}
    return any(
        "reclaim" in key and (json.loads(value).get("retries") or 0) >= at_least
        for key, value in annotations.items()
        if key.startswith("pinstack.io/")
    )


async def test_delete_policy_keeps_the_finalizer_and_reports_until_postgres_is_back(
    stacks: StackFactory, postgres: Any
) -> None:
    manifest = stacks.manifest(reclaimPolicy="Delete")
    await stacks.api.apply(manifest)
    await _condition_is(stacks, "DatabasesReady", "True")
    # PostgreSQL becomes unreachable: nothing listens on port 1 (a Unix socket directory).
    manifest["spec"]["postgres"]["port"] = 1
    await stacks.api.apply(manifest)
    await _condition_is(stacks, "DatabasesReady", "False")
    await _delete_stack(stacks)

    failed = await _condition_is(stacks, "ReclaimFailed", "True")
    assert failed["reason"] == "DatabaseDropFailed"
    assert f"{postgres.socket_dir}:1" in failed["message"]
    await eventually(lambda: _reclaim_retries(stacks), what="several reclaim retries")
    # Several retries later: still there, nothing leaked.
    stack = await stacks.get()
    assert stack is not None
    assert "pinstack.io/finalizer" in stack["metadata"]["finalizers"]
    assert stack["status"]["phase"] == "Deleting"
    assert stacks.database("user") in await _databases(postgres)
    assert await stacks.secret("stack-user-db") is not None

    # PostgreSQL is back: the reclaim finishes and the stack goes.
    manifest["spec"]["postgres"]["port"] = 5432
    await stacks.api.apply(manifest)
    await eventually(stacks.gone, what="stack deleted once PostgreSQL is reachable")
    assert stacks.database("user") not in await _databases(postgres)
    assert await stacks.secret("stack-user-db") is None


async def test_monitoring_the_chart_renders_is_left_to_the_chart(
    stacks: StackFactory, postgres: Any, kafka: Any
) -> None:
    """One owner per kind: with the chart's ServiceMonitors present the operator makes none (and
    removes its own), keeps its PrometheusRule, and takes the monitors back once the chart's go."""
    monitors_api = "monitoring.coreos.com/v1"
    chart_monitor = {
        "apiVersion": monitors_api,
        "kind": "ServiceMonitor",
        "metadata": {
            "name": "stack-user",
            "namespace": stacks.namespace,
            # What the chart puts on it (pinstack.labels): Helm manages it, for this stack.
            "labels": {"app.kubernetes.io/managed-by": "Helm", "pinstack.io/stack": "stack"},
        },
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/component": "user"}},
                 "endpoints": [{"port": "metrics"}]},
    }  # fmt: skip
    await stacks.api.apply(stacks.manifest())
    await _condition_is(stacks, "MonitoringReady", "True")
    await stacks.api.apply(chart_monitor)

    async def operator_monitors() -> set[str]:
        found = await stacks.api.list(monitors_api, "ServiceMonitor", namespace=stacks.namespace)
        return {m["metadata"]["name"] for m in found} - {"stack-user"}

    stepped_aside = await _condition_is(stacks, "MonitoringReady", "False")
    assert stepped_aside["reason"] == "OwnedByChart"
    assert "monitoring.serviceMonitor.enabled=false" in stepped_aside["message"]
    await eventually(lambda: _empty(operator_monitors), what="the operator's monitors removed")
    rules = await stacks.api.list(monitors_api, "PrometheusRule", namespace=stacks.namespace)
    assert [r["metadata"]["name"] for r in rules] == ["stack-alerts-operator"]

    await stacks.api.delete(monitors_api, "ServiceMonitor", namespace=stacks.namespace,
                            name="stack-user")  # fmt: skip
    await _condition_is(stacks, "MonitoringReady", "True")
    assert await operator_monitors() == {
        "stack-user-operator", "stack-auth-operator", "stack-gateway-operator",
    }  # fmt: skip


async def _empty(names: Callable[[], Awaitable[set[str]]]) -> bool:
    return not await names()


async def test_timer_repairs_drift(stacks: StackFactory, postgres: Any, kafka: Any) -> None:
    await stacks.api.apply(stacks.manifest())
    await _complete_all_jobs(stacks, "registry.local/pinstack:1.0.0")
    await _condition_is(stacks, "Ready", "True")
    signing_before = _decode(await stacks.secret("stack-jwt-signing-key") or {})

    # Break things behind the operator's back; no spec change, so only the timer can notice.
    await asyncio.to_thread(postgres.drop_database, stacks.database("user"))
    await stacks.api.delete("v1", "Secret", namespace=stacks.namespace, name="stack-user-db")
    await stacks.api.delete("monitoring.coreos.com/v1", "ServiceMonitor",
                            namespace=stacks.namespace, name="stack-auth-operator")  # fmt: skip

    def drop_topic() -> None:
        admin = _admin(kafka)
        futures = admin.delete_topics([stacks.topic("post")])
        for future in futures.values():
            future.result(timeout=10)

    await asyncio.to_thread(drop_topic)

    async def repaired() -> bool:
        return (
            stacks.database("user") in await _databases(postgres)
            and await stacks.secret("stack-user-db") is not None
            and stacks.topic("post") in await _topics(kafka)
            and await stacks.api.find("monitoring.coreos.com/v1", "ServiceMonitor",
                                      namespace=stacks.namespace,
                                      name="stack-auth-operator") is not None
        )  # fmt: skip

    await eventually(repaired, within=RESYNC_SECONDS * 10, what="drift repaired by the timer")
    # A lost Secret is re-created with a password (a pass already in flight may re-apply the
    # old one); either way the role is given it, as it differs from the one last set.
    assert _decode(await stacks.secret("stack-user-db") or {})["password"]
    assert _decode(await stacks.secret("stack-jwt-signing-key") or {}) == signing_before
    # The recreated database is empty: its migration Job runs again before the stack is Ready.
    oid = (await _database_oids(postgres))[stacks.database("user")]
    name = migration_job_name(await _ref(stacks), service="user", image=IMAGE)

    async def rerun() -> bool:
        job = await stacks.api.find("batch/v1", "Job", namespace=stacks.namespace, name=name)
        annotations = (job or {}).get("metadata", {}).get("annotations", {})
        return bool(annotations.get("pinstack.io/database-oid") == oid)

    await eventually(rerun, what="the user migration Job for the recreated database")
    await _complete_job(stacks.api, stacks.namespace, name)
    await _condition_is(stacks, "Ready", "True")


async def test_missing_admin_secret_is_reported(stacks: StackFactory) -> None:
    manifest = stacks.manifest()
    manifest["spec"]["postgres"]["adminCredentialsSecretRef"] = {"name": "nowhere"}
    await stacks.api.apply(manifest)
    condition = await _condition_is(stacks, "DatabasesReady", "False")
    assert condition["reason"] == "AdminCredentialsMissing"
    assert "nowhere" in condition["message"]
    ready = await _condition_is(stacks, "Ready", "False")
    assert "DatabasesReady" in ready["message"]
