"""Manifests of the in-cluster children of a PinstackStack.

Every child carries the stack's labels, so ``kubectl get -l pinstack.io/stack=<name>`` finds it.
Children that can be rebuilt (migration Jobs, monitors) also carry a controller owner reference,
so the garbage collector removes them with the stack. Secrets do not: they hold what cannot be
rebuilt (database passwords, the JWT signing key, the internal token), so they outlive the stack
unless its ``reclaimPolicy`` is ``Delete`` (the operator then deletes them by name). Their owner is
recorded in the ``pinstack.io/stack`` label and the ``pinstack.io/stack-uid`` annotation; a stack
created again with the same name adopts them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import yaml

from pinstack_operator.connectivity import postgres_ca_volume, postgres_url_tls
from pinstack_operator.models import GROUP, KIND, VERSION, ServiceSpec, StackSpec

__all__ = [
    "COMPONENT_LABEL",
    "DATABASE_OID_ANNOTATION",
    "IMAGE_ANNOTATION",
    "IMAGE_SOURCE_ANNOTATION",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "PART_OF_LABEL",
    "RERUN_ANNOTATION",
    "SERVICE_LABEL",
    "STACK_LABEL",
    "STACK_UID_ANNOTATION",
    "MigrationImage",
    "MigrationRun",
    "StackRef",
    "database_secret",
    "database_secret_name",
    "internal_token_secret",
    "internal_token_secret_name",
    "migration_job",
    "migration_job_name",
    "migration_service_account",
    "migration_service_account_name",
    "monitoring_name",
    "prometheus_rule",
    "service_monitor",
    "signing_key_secret",
    "signing_key_secret_name",
    "stack_labels",
    "stack_secret_names",
]

STACK_LABEL = "pinstack.io/stack"
SERVICE_LABEL = "pinstack.io/service"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pinstack-operator"
# On migration Jobs: the image they migrate with, and where that image came from.
IMAGE_ANNOTATION = "pinstack.io/image"
IMAGE_SOURCE_ANNOTATION = "pinstack.io/image-source"
# The uid of the PinstackStack that last wrote a Secret (Secrets carry no owner reference).
STACK_UID_ANNOTATION = "pinstack.io/stack-uid"
# On migration Jobs: the oid of the database they migrate (a recreated database has a new one)
# and the stack's re-run request (``RERUN_ANNOTATION``) they were created under.
DATABASE_OID_ANNOTATION = "pinstack.io/database-oid"
RERUN_ANNOTATION = "migrations.pinstack.io/rerun"


@dataclass(frozen=True, kw_only=True)
class StackRef:
    """Identity of the owning PinstackStack."""

    name: str
    namespace: str
    uid: str

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def stack_labels(stack: StackRef, *, component: str, service: str | None = None) -> dict[str, str]:
    labels = {
        STACK_LABEL: stack.name,
        MANAGED_BY_LABEL: MANAGED_BY,
        PART_OF_LABEL: "pinstack",
        COMPONENT_LABEL: component,
    }
    if service is not None:
        labels[SERVICE_LABEL] = service
    return labels


def _labelled(stack: StackRef, name: str, *, component: str, service: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": stack.namespace,
        "labels": stack_labels(stack, component=component, service=service),
    }


def _metadata(
    stack: StackRef, name: str, *, component: str, service: str | None = None
) -> dict[str, Any]:
    """A rebuildable child's metadata: the stack's labels and an owner reference to it."""
    return {
        **_labelled(stack, name, component=component, service=service),
        "ownerReferences": [stack.owner_reference()],
    }


def _secret_metadata(
    stack: StackRef, name: str, *, component: str, service: str | None = None
) -> dict[str, Any]:
    """A Secret's metadata: the stack's labels and uid, no owner reference (see the module doc)."""
    return {
        **_labelled(stack, name, component=component, service=service),
        "annotations": {STACK_UID_ANNOTATION: stack.uid},
    }


def _secret(metadata: dict[str, Any], data: Mapping[str, str]) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": encoded,
    }


def database_secret_name(stack: StackRef, service: str) -> str:
    return f"{stack.name}-{service}-db"


def database_secret(
    stack: StackRef, *, spec: StackSpec, service: ServiceSpec, password: str
) -> dict[str, Any]:
    """Connection details for one service (``database-url`` feeds ``PINSTACK_DATABASE_URL``)."""
    database = service.database or ""
    postgres = spec.postgres
    user = quote(database, safe="")
    secret = quote(password, safe="")
    if postgres.host.startswith("/"):
        location = f"/{database}?host={quote(postgres.host, safe='/')}&port={postgres.port}"
        url = f"postgresql+asyncpg://{user}:{secret}@{location}"
    else:
        url = f"postgresql+asyncpg://{user}:{secret}@{postgres.host}:{postgres.port}/{database}"
    tls = {} if postgres.host.startswith("/") else postgres_url_tls(postgres)
    if tls:
        url += ("&" if "?" in url else "?") + urlencode(tls, safe="/")
    return _secret(
        _secret_metadata(stack, database_secret_name(stack, service.name),
                         component="database", service=service.name),
        {
            "host": postgres.host,
            "port": str(postgres.port),
            "database": database,
            "username": database,
            "password": password,
            "sslmode": postgres.sslmode,
            **({"sslrootcert": tls["sslrootcert"]} if "sslrootcert" in tls else {}),
            "database-url": url,
        },
    )  # fmt: skip


def signing_key_secret_name(stack: StackRef) -> str:
    return f"{stack.name}-jwt-signing-key"


def signing_key_secret(stack: StackRef, *, material: Mapping[str, str]) -> dict[str, Any]:
    return _secret(
        _secret_metadata(stack, signing_key_secret_name(stack), component="auth"), material
    )


def internal_token_secret_name(stack: StackRef) -> str:
    return f"{stack.name}-internal-token"


def internal_token_secret(stack: StackRef, *, token: str) -> dict[str, Any]:
    return _secret(
        _secret_metadata(stack, internal_token_secret_name(stack), component="auth"),
        {"token": token},
    )


def stack_secret_names(stack: StackRef, spec: StackSpec) -> list[str]:
    """Every Secret the operator writes for ``stack`` (reclaim deletes or releases these)."""
    return [
        signing_key_secret_name(stack),
        internal_token_secret_name(stack),
        *(database_secret_name(stack, service.name) for service in spec.database_services),
    ]


def migration_job_name(stack: StackRef, *, service: str, image: str) -> str:
    """Unique per service and image version, within the 63-character name limit."""
    digest = hashlib.sha256(image.encode()).hexdigest()[:10]
    prefix = f"{stack.name}-migrate-{service}"[:52].rstrip("-")
    return f"{prefix}-{digest}"


@dataclass(frozen=True, kw_only=True)
class MigrationImage:
    """The image a migration Job runs, and where the operator found it."""

    reference: str
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()
    source: str = "spec.image"


def migration_service_account_name(stack: StackRef) -> str:
    return f"{stack.name}-migrations"


def migration_service_account(stack: StackRef) -> dict[str, Any]:
    """The migration Jobs' own identity: no API token (``pinstack migrate`` never calls the
    Kubernetes API), so a compromised migration image holds no cluster credentials."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(stack, migration_service_account_name(stack), component="migration"),
        "automountServiceAccountToken": False,
    }


@dataclass(frozen=True, kw_only=True)
class MigrationRun:
    """What one migration Job is for: the database (by oid) and the re-run request."""

    database_oid: str = ""
    rerun: str = ""


def migration_job(
    stack: StackRef,
    *,
    spec: StackSpec,
    service: ServiceSpec,
    image: MigrationImage | None = None,
    run: MigrationRun | None = None,
) -> dict[str, Any]:
    """``pinstack migrate up --service <name>`` with ``image`` (default: ``spec.image``)."""
    if image is None:
        image = MigrationImage(reference=spec.image.reference, pull_policy=spec.image.pull_policy)
    run = run or MigrationRun()
    limits = spec.migration_jobs
    name = migration_job_name(stack, service=service.name, image=image.reference)
    metadata = _metadata(stack, name, component="migration", service=service.name)
    metadata["annotations"] = {
        IMAGE_ANNOTATION: image.reference,
        IMAGE_SOURCE_ANNOTATION: image.source,
        DATABASE_OID_ANNOTATION: run.database_oid,
        RERUN_ANNOTATION: run.rerun,
    }
    env: list[dict[str, Any]] = [
        {
            "name": "PINSTACK_DATABASE_URL",
            "valueFrom": {
                "secretKeyRef": {
                    "name": database_secret_name(stack, service.name),
                    "key": "database-url",
                }
            },
        },
        {"name": "PINSTACK_KAFKA_BOOTSTRAP_SERVERS", "value": spec.kafka.bootstrap_servers},
    ]
    if spec.redis.url:
        env.append({"name": "PINSTACK_REDIS_URL", "value": spec.redis.url})
    pull_secrets = dict.fromkeys([*image.pull_secrets, *(s.name for s in spec.image_pull_secrets)])
    ca_volumes, ca_mounts = postgres_ca_volume(spec.postgres)  # the URL's sslrootcert
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": limits.backoff_limit,
            "activeDeadlineSeconds": limits.active_deadline_seconds,
            "ttlSecondsAfterFinished": limits.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": dict(metadata["labels"])},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": migration_service_account_name(stack),
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    **(
                        {"imagePullSecrets": [{"name": name} for name in pull_secrets]}
                        if pull_secrets
                        else {}
                    ),
                    "containers": [
                        {
                            "name": "migrate",
                            "image": image.reference,
                            "imagePullPolicy": image.pull_policy,
                            "command": ["pinstack", "migrate", "up", "--service", service.name],
                            "env": env,
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {
                                key: dict(value) for key, value in limits.resources.items()
                            },
                            **({"volumeMounts": ca_mounts} if ca_mounts else {}),
                        }
                    ],
                    **({"volumes": ca_volumes} if ca_volumes else {}),
                },
            },
        },
    }


def monitoring_name(stack: StackRef, what: str) -> str:
    """``<stack>-<what>-operator``: never the name of one of the chart's monitoring objects
    (``<release>-<component>``, ``<release>-pinstack``), so the two can never collide."""
    return f"{stack.name}-{what}-operator"


def service_monitor(stack: StackRef, *, spec: StackSpec, service: ServiceSpec) -> dict[str, Any]:
    """Scrapes the Service the pinstack chart renders for ``service`` in this stack.

    The selector uses the labels the chart puts on every component (``pinstack.io/stack`` is the
    chart's ``stackName``), so a release is found whatever it is called.
    """
    metadata = _metadata(
        stack, monitoring_name(stack, service.name), component="monitoring", service=service.name
    )
    metadata["labels"].update(spec.monitoring.labels)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata,
        "spec": {
            "jobLabel": COMPONENT_LABEL,
            # The alerts match on it (``up{app_kubernetes_io_part_of="pinstack"}``), as on the
            # chart's own ServiceMonitors: whichever owns monitoring, the same alerts can fire.
            "targetLabels": [PART_OF_LABEL],
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "pinstack",
                    STACK_LABEL: stack.name,
                    COMPONENT_LABEL: service.name,
                }
            },
            "namespaceSelector": {"matchNames": [stack.namespace]},
            "endpoints": [
                {
                    # The gateway serves /metrics on its HTTP port; services on a metrics port.
                    "port": "http" if service.name == "gateway" else "metrics",
                    "path": "/metrics",
                    "interval": "30s",
                }
            ],
        },
    }


def alert_rule_groups() -> list[dict[str, Any]]:
    """The project's alert and recording rules (``alerts/`` in the repository, packaged here)."""
    groups: list[dict[str, Any]] = []
    for resource in sorted(
        importlib.resources.files("pinstack_operator").joinpath("alerts").iterdir(),
        key=lambda item: item.name,
    ):
        if resource.name.endswith(".rules.yaml"):
            groups.extend(yaml.safe_load(resource.read_text())["groups"])
    return groups


def prometheus_rule(stack: StackRef, *, spec: StackSpec) -> dict[str, Any]:
    """The SLO burn-rate, outbox, consumer-lag and error-ratio alerts (unit-tested by promtool)."""
    metadata = _metadata(stack, monitoring_name(stack, "alerts"), component="monitoring")
    metadata["labels"].update(spec.monitoring.labels)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": alert_rule_groups()},
    }
