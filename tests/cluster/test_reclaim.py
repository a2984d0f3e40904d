"""Deleting a stack: Retain keeps databases, topics and Secrets (and a new stack adopts them);
Delete removes everything, and a removal that fails keeps the finalizer with ReclaimFailed.

A scratch stack of its own (namespace ``reclaim``, its own databases and topics) keeps the main
installation untouched.
"""

from __future__ import annotations

import time
from typing import Any

from tests.cluster.conftest import APP_TAG, Installed

NAMESPACE = "reclaim"
STACK = "scratch"
DATABASES = {"user": "scratch_user", "auth": "scratch_auth"}
TOPIC = "scratch.user.events.v1"


def _stack(*, reclaim: str, host: str = "postgresql.pinstack-infra.svc") -> dict[str, Any]:
    return {
        "apiVersion": "pinstack.io/v1alpha1",
        "kind": "PinstackStack",
        "metadata": {"name": STACK, "namespace": NAMESPACE},
        "spec": {
            "image": {"repository": "ghcr.io/pinstack/pinstack", "tag": APP_TAG},
            "postgres": {
                "host": host,
                "port": 5432,
                "sslmode": "prefer",
                "adminCredentialsSecretRef": {"name": "pinstack-postgres-admin"},
            },
            "kafka": {"bootstrapServers": "kafka.pinstack-infra.svc:9092"},
            "redis": {"url": "redis://redis.pinstack-infra.svc:6379/1"},
            "services": [{"name": name, "database": db} for name, db in DATABASES.items()],
            "topics": [{"name": TOPIC, "partitions": 1, "replicationFactor": 1}],
            "reclaimPolicy": reclaim,
            "monitoring": {"enabled": False},
        },
    }


def _databases(installed: Installed) -> set[str]:
    out = installed.cluster.kubectl(
        "exec", "-n", "pinstack-infra", "postgresql-0", "--",
        "psql", "-U", "postgres", "-tAc", "SELECT datname FROM pg_database",
    )  # fmt: skip
    return set(out.split())


def _topics(installed: Installed) -> set[str]:
    script = (
        "from confluent_kafka.admin import AdminClient\n"
        "admin = AdminClient({'bootstrap.servers': 'kafka.pinstack-infra.svc:9092'})\n"
        "print('\\n'.join(admin.list_topics(timeout=20).topics))\n"
    )
    out = installed.cluster.kubectl(
        "exec", "-n", "default", "deploy/pinstack-notification", "-c", "notification", "--",
        "python", "-c", script,
    )  # fmt: skip
    return set(out.split())


def _secrets(installed: Installed) -> dict[str, dict[str, str]]:
    items = installed.cluster.kubectl_json(
        "get", "secrets", "-n", NAMESPACE, "-l", f"pinstack.io/stack={STACK}"
    )["items"]
    return {item["metadata"]["name"]: item["data"] for item in items}


def _wait_ready(installed: Installed) -> None:
    installed.cluster.kubectl("wait", "-n", NAMESPACE, f"pinstackstack/{STACK}",
                              "--for=condition=Ready", "--timeout=600s", timeout=620)  # fmt: skip


def _wait_gone(installed: Installed) -> None:
    installed.cluster.kubectl("wait", "-n", NAMESPACE, f"pinstackstack/{STACK}",
                              "--for=delete", "--timeout=300s", timeout=320)  # fmt: skip


def test_retain_keeps_everything_and_a_new_stack_adopts_it(installed: Installed) -> None:
    cluster = installed.cluster
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("create", "secret", "generic", "pinstack-postgres-admin", "-n", NAMESPACE,
                    "--from-literal=username=postgres",
                    "--from-literal=password=pinstack-dev-only")  # fmt: skip
    cluster.apply([_stack(reclaim="Retain")])
    _wait_ready(installed)
    secrets = _secrets(installed)
    assert {f"{STACK}-jwt-signing-key", f"{STACK}-internal-token"} <= set(secrets), secrets.keys()
    assert {f"{STACK}-{service}-db" for service in DATABASES} <= set(secrets)

    cluster.kubectl("delete", "pinstackstack", STACK, "-n", NAMESPACE, "--wait=false")
    _wait_gone(installed)
    # The garbage collector has nothing to take them with: they carry no owner reference.
    assert _secrets(installed) == secrets
    assert set(DATABASES.values()) <= _databases(installed)
    assert TOPIC in _topics(installed)

    cluster.apply([_stack(reclaim="Retain")])
    _wait_ready(installed)
    assert _secrets(installed) == secrets  # adopted: same passwords, same signing key


def test_delete_removes_everything_and_reports_what_it_cannot(installed: Installed) -> None:
    cluster = installed.cluster
    # PostgreSQL made unreachable for this stack only: its databases cannot be dropped.
    cluster.apply([_stack(reclaim="Delete", host="nowhere.pinstack-infra.svc")])
    cluster.kubectl("delete", "pinstackstack", STACK, "-n", NAMESPACE, "--wait=false")
    deadline = time.monotonic() + 300
    condition: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stack = cluster.kubectl_json("get", "pinstackstack", STACK, "-n", NAMESPACE)
        conditions = {c["type"]: c for c in stack.get("status", {}).get("conditions", [])}
        condition = conditions.get("ReclaimFailed", {})
        if condition.get("status") == "True":
            break
        time.sleep(1)
    assert condition.get("status") == "True", condition
    assert set(DATABASES.values()) <= _databases(installed)  # nothing half-removed, nothing lost

    cluster.apply([_stack(reclaim="Delete")])  # the cause fixed: the deletion completes
    _wait_gone(installed)
    assert not set(DATABASES.values()) & _databases(installed)
    assert TOPIC not in _topics(installed)
    assert _secrets(installed) == {}
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
