"""The operator's pure parts: conditions, phases, Job states, names, key material, settings,
and the monitoring step without the Prometheus Operator (no cluster needed)."""

from __future__ import annotations

import base64
import datetime
import re
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_operator.conditions import ConditionResult, merge_conditions, phase_for
from pinstack_operator.config import OperatorConfig
from pinstack_operator.credentials import signing_key_material
from pinstack_operator.databases import EnsureReport, PostgresAdmin
from pinstack_operator.jobs import job_failure, job_state
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.migrations import images_of_deployments
from pinstack_operator.models import StackSpec
from pinstack_operator.monitoring import reconcile_monitoring
from pinstack_operator.ownership import Marker, password_fingerprint, password_matches
from pinstack_operator.provisioning import provision_databases
from pinstack_operator.resources import StackRef, migration_job, migration_job_name

STACK = StackRef(name="s" * 60, namespace="ns", uid="uid-1")
SPEC = StackSpec.parse(
    {
        "image": {"repository": "r", "tag": "1"},
        "postgres": {"host": "db", "adminCredentialsSecretRef": {"name": "admin"}},
        "kafka": {"bootstrapServers": "k:9092"},
        "services": [{"name": "user", "database": "u"}, {"name": "gateway"}],
        "monitoring": {"enabled": True},
    }
)


def _result(kind: str, status: str, reason: str = "R") -> ConditionResult:
    return ConditionResult(type=kind, status=status, reason=reason, message="m")  # type: ignore[arg-type]


def test_last_transition_time_moves_only_when_status_changes() -> None:
    times = iter(
        [
            datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
            datetime.datetime(2026, 1, 3, tzinfo=datetime.UTC),
        ]
    )
    first = merge_conditions(
        previous=[], results=[_result("A", "False")], generation=1, clock=lambda: next(times)
    )
    same = merge_conditions(
        previous=first, results=[_result("A", "False")], generation=2, clock=lambda: next(times)
    )
    flipped = merge_conditions(
        previous=same, results=[_result("A", "True")], generation=2, clock=lambda: next(times)
    )
    assert first[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "2026-01-03T00:00:00Z"


def test_phase_summarises_conditions() -> None:
    ok = _result("DatabasesReady", "True")
    assert phase_for([ok, _result("MigrationsComplete", "True")]) == "Ready"
    assert phase_for([ok, _result("MigrationsComplete", "False")]) == "Migrating"
    failed = _result("DatabasesReady", "False", "DatabaseProvisioningFailed")
    assert phase_for([failed]) == "Degraded"
    assert phase_for([_result("DatabasesReady", "False", "AdminCredentialsMissing")]) == (
        "Provisioning"
    )


def test_job_state_reads_conditions_and_counters() -> None:
    assert job_state({}) == "running"
    assert job_state({"status": {"succeeded": 1}}) == "complete"
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    assert job_state(failed) == "failed"
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert job_state(complete) == "complete"


def _deployment(component: str, *images: str, **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"rel-{component}", "labels": {"app.kubernetes.io/component":
                     component}, **metadata},
        "spec": {"template": {"spec": {
            "imagePullSecrets": [{"name": "regcred"}],
            "initContainers": [{"name": "wait-for-schema", "image": "ignored:0"}],
            "containers": [{"name": component if i == 0 else f"sidecar{i}", "image": image,
                            "imagePullPolicy": "Always"} for i, image in enumerate(images)],
        }}},
    }  # fmt: skip


def test_images_of_deployments_takes_the_service_container_of_live_deployments() -> None:
    deployments = [
        _deployment("user", "r:2", "proxy:1"),
        _deployment("user", "r:3"),  # a second release of the same stack
        _deployment("user", "r:2"),
        _deployment("user", "r:9", deletionTimestamp="2026-01-01T00:00:00Z"),
        _deployment("auth", "r:5"),
    ]
    found = images_of_deployments(deployments, "user")
    assert [image.reference for image in found] == ["r:2", "r:3"]
    assert found[0].pull_policy == "Always"
    assert found[0].pull_secrets == ("regcred",)
    assert found[0].source == "Deployment rel-user"
    assert images_of_deployments(deployments, "post") == []


def test_migration_job_names_fit_and_follow_the_image() -> None:
    first = migration_job_name(STACK, service="notification", image="r:1")
    second = migration_job_name(STACK, service="notification", image="r:2")
    assert len(first) <= 63
    assert first != second
    assert first == migration_job_name(STACK, service="notification", image="r:1")


def test_signing_key_is_kept_once_generated_and_replaced_when_garbage() -> None:
    material = signing_key_material({})
    again = signing_key_material(material)
    assert again == material
    assert material["kid"]
    assert material["algorithm"] == "EdDSA"
    replaced = signing_key_material({"signing-key.pem": "not a key", "kid": "x"})
    assert replaced["kid"] != "x"
    key = serialization.load_pem_private_key(replaced["signing-key.pem"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)


def test_config_from_env() -> None:
    config = OperatorConfig.from_env(
        {
            "PINSTACK_OPERATOR_NAMESPACES": "a, b",
            "PINSTACK_OPERATOR_RESYNC_SECONDS": "5",
            "KUBECONFIG": "/k",
        }
    )
    assert config.namespaces == ("a", "b")
    assert config.resync_seconds == 5
    assert config.kubeconfig == "/k"


class _NoPrometheusApi:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    async def serves(self, api_version: str, plural: str) -> bool:
        return False

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest)
        return manifest


async def test_monitoring_without_the_prometheus_operator_says_what_to_install() -> None:
    api = _NoPrometheusApi()
    condition = await reconcile_monitoring(cast(KubeApi, api), STACK, spec=SPEC)
    assert condition.status == "False"
    assert condition.reason == "PrometheusOperatorNotInstalled"
    assert "servicemonitors.monitoring.coreos.com" in condition.message
    assert api.applied == []
    disabled = SPEC.model_copy(
        update={"monitoring": SPEC.monitoring.model_copy(update={"enabled": False})}
    )
    assert (await reconcile_monitoring(cast(KubeApi, api), STACK, spec=disabled)).ok


def test_retries_back_off_exponentially_up_to_a_cap() -> None:
    config = OperatorConfig(retry_seconds=2, retry_max_seconds=60)
    assert [config.retry_delay(retry) for retry in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert config.retry_delay(10_000) == 60
    assert OperatorConfig.from_env({"PINSTACK_OPERATOR_RETRY_MAX_SECONDS": "7"}).retry_delay(9) == 7


def test_job_failure_names_the_reason_and_message() -> None:
    failed = {"status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
         "message": "Job was active longer than specified deadline"},
    ]}}  # fmt: skip
    assert job_failure(failed) == "DeadlineExceeded: Job was active longer than specified deadline"
    assert job_failure({}) == "failed"


def test_a_digest_image_makes_a_valid_job() -> None:
    digest = "sha256:" + "0f" * 32
    spec = SPEC.model_copy(
        update={"image": SPEC.image.model_copy(update={"tag": None, "digest": digest})}
    )
    assert spec.image.reference == f"r@{digest}"
    job = migration_job(STACK, spec=spec, service=spec.services[0])
    name = job["metadata"]["name"]
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    for value in job["metadata"]["labels"].values():
        assert len(value) <= 63
        assert re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", value)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == f"r@{digest}"


def test_ownership_marker_round_trips_and_ignores_foreign_comments() -> None:
    marker = Marker(stack_uid="uid-1", stack="ns/s", password=password_fingerprint("secret"))
    assert Marker.parse(marker.comment()) == marker
    assert Marker.parse(None) is None
    assert Marker.parse("the team's database, do not touch") is None
    assert Marker.parse('{"owner": "someone"}') is None
    assert password_matches("secret", marker.password)
    assert not password_matches("Secret", marker.password)
    assert not password_matches("secret", "md5$whatever")
    assert not password_matches("secret", "garbage")
    assert password_fingerprint("secret") != password_fingerprint("secret")  # salted


class _EditedSecretApi:
    """A Secret someone changes between the operator's read and its write."""

    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    async def find(self, api_version: str, kind: str, **_: Any) -> dict[str, Any]:
        password = base64.b64encode(b"old-password").decode()
        return {"metadata": {"resourceVersion": "7"}, "data": {"password": password}}

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest)
        if manifest["metadata"].get("resourceVersion") == "7":
            raise ApiException(status=409, reason="Conflict")
        return manifest


class _Postgres:
    async def ensure(self, grants: list[Any]) -> EnsureReport:
        return EnsureReport(oids={grant.database: "42" for grant in grants}, refused=[])


async def test_a_secret_changed_during_the_pass_is_not_overwritten() -> None:
    api = _EditedSecretApi()
    condition, oids = await provision_databases(
        cast(KubeApi, api), STACK, spec=SPEC, postgres=cast(PostgresAdmin, _Postgres())
    )
    assert condition.reason == "SecretChanged"
    assert "s" * 60 + "-user-db" in condition.message
    assert oids == {}
    assert [m["metadata"]["resourceVersion"] for m in api.applied] == ["7"]
