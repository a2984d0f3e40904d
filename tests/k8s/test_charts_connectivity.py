"""The service chart wires TLS and SASL into the pods from the Secrets the user names, where the
services' settings and the operator's database URLs expect them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pinstack_devinfra.commands import ToolError
from pinstack_devinfra.helm import helm_template_objects
from pinstack_operator.connectivity import POSTGRES_CA_DIR, POSTGRES_CA_FILE

CHART = Path(__file__).resolve().parents[2] / "charts" / "pinstack"

_SECURE = {
    "postgres.caSecret.name": "pg-ca",
    "postgres.caSecret.key": "bundle.pem",
    "kafka.securityProtocol": "SASL_SSL",
    "kafka.caSecret.name": "kafka-ca",
    "kafka.sasl.mechanism": "SCRAM-SHA-256",
    "kafka.sasl.credentialsSecret.name": "kafka-login",
}


def _pods(set_values: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        o["spec"]["template"]["spec"]["containers"][0]["name"]: o["spec"]["template"]["spec"]
        for o in helm_template_objects(CHART, set_values=set_values)
        if o["kind"] == "Deployment"
    }


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _mounts(container: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}


def test_defaults_mount_nothing_and_speak_plaintext() -> None:
    for pod in _pods({}).values():
        container = pod["containers"][0]
        assert _env(container)["PINSTACK_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
        assert not {"postgres-ca", "kafka-ca"} & set(_mounts(container))


def test_the_named_secrets_reach_every_pod_where_the_settings_expect_them() -> None:
    pods = _pods(_SECURE)
    for name, pod in pods.items():
        container = pod["containers"][0]
        env = _env(container)
        assert env["PINSTACK_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["PINSTACK_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
        assert env["PINSTACK_KAFKA_SASL_USERNAME"] == {
            "secretKeyRef": {"name": "kafka-login", "key": "username"}
        }
        assert env["PINSTACK_KAFKA_SASL_PASSWORD"] == {
            "secretKeyRef": {"name": "kafka-login", "key": "password"}
        }
        ca_dir = _mounts(container)["kafka-ca"]
        assert env["PINSTACK_KAFKA_SSL_CA_LOCATION"] == f"{ca_dir}/ca.crt"
        volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        assert volumes["kafka-ca"]["secretName"] == "kafka-ca"
        if name == "gateway":  # no database, so no PostgreSQL CA
            assert "postgres-ca" not in volumes
            continue
        # The operator's database URLs say sslrootcert=POSTGRES_CA_FILE.
        assert f"{POSTGRES_CA_DIR}/ca.crt" == POSTGRES_CA_FILE
        assert _mounts(container)["postgres-ca"] == POSTGRES_CA_DIR
        assert _mounts(pod["initContainers"][0])["postgres-ca"] == POSTGRES_CA_DIR
        assert volumes["postgres-ca"] == {
            "secretName": "pg-ca",
            "defaultMode": 0o444,
            "items": [{"key": "bundle.pem", "path": "ca.crt"}],
        }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka.securityProtocol": "SASL_SSL"}, "needs kafka.sasl.credentialsSecret.name"),
        ({"kafka.caSecret.name": "kafka-ca"}, "kafka.caSecret is only used with"),
    ],
)
def test_inconsistent_kafka_values_fail_the_render(values: dict[str, str], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        _pods(values)
