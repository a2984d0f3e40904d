"""How the operator reaches a stack's PostgreSQL and Kafka: TLS and SASL from the spec and the
Secrets it names, and what the services' pods are told about them.

The operator reads CA bundles and SASL credentials from the Secrets each pass (a rotated Secret
is used at once) and hands them to its clients in memory: asyncpg gets an
:class:`ssl.SSLContext` built from the PEM text, librdkafka gets ``ssl.ca.pem``. Service pods
read the same CA from a file, where the pinstack chart mounts ``postgres.caSecret``
(:data:`POSTGRES_CA_FILE`); their database URLs say so with libpq's ``sslrootcert``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal

from pinstack_operator.credentials import decode_secret_data
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.models import CaSecretRef, KafkaSpec, PostgresSpec

__all__ = [
    "POSTGRES_CA_DIR",
    "POSTGRES_CA_FILE",
    "ConnectionSecretMissingError",
    "KafkaAccess",
    "kafka_access",
    "postgres_ca_bundle",
    "postgres_ca_volume",
    "postgres_ssl",
    "postgres_url_tls",
]

# Where service pods (the chart) and migration Jobs (the operator) mount the PostgreSQL CA.
POSTGRES_CA_DIR = "/var/run/secrets/pinstack/postgres-ca"
POSTGRES_CA_FILE = f"{POSTGRES_CA_DIR}/ca.crt"
_VERIFYING = ("verify-ca", "verify-full")
_WEAKER: dict[str, Literal["allow", "prefer", "require"]] = {
    "allow": "allow",
    "prefer": "prefer",
    "require": "require",
}


class ConnectionSecretMissingError(LookupError):
    """A Secret the spec names for TLS or SASL (or one of its keys) is missing."""


async def _secret_value(api: KubeApi, namespace: str, name: str, key: str, what: str) -> str:
    secret = await api.find("v1", "Secret", namespace=namespace, name=name)
    if secret is None:
        raise ConnectionSecretMissingError(
            f"Secret {namespace}/{name} with the {what} does not exist"
        )
    data = decode_secret_data(secret)
    if not data.get(key):
        raise ConnectionSecretMissingError(f"Secret {namespace}/{name} has no key {key!r}")
    return data[key]


async def _ca_bundle(
    api: KubeApi, namespace: str, ref: CaSecretRef | None, what: str
) -> str | None:
    if ref is None:
        return None
    return await _secret_value(api, namespace, ref.name, ref.key, what)


async def postgres_ca_bundle(api: KubeApi, namespace: str, spec: PostgresSpec) -> str | None:
    """The PEM bundle ``spec.postgres.caSecretRef`` names; None without one."""
    return await _ca_bundle(api, namespace, spec.ca, "PostgreSQL CA bundle")


def postgres_ssl(
    sslmode: str, ca_pem: str | None
) -> ssl.SSLContext | Literal["allow", "prefer", "require", False]:
    """asyncpg's ``ssl`` argument for the admin connection.

    ``verify-ca``/``verify-full`` trust exactly ``ca_pem`` (the system's store without one);
    ``verify-ca`` skips the host-name check, as libpq's does. Weaker modes are asyncpg's own.
    """
    if sslmode == "disable":
        return False
    if sslmode not in _VERIFYING:
        return _WEAKER.get(sslmode, "prefer")
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    context.check_hostname = sslmode == "verify-full"
    return context


def postgres_url_tls(spec: PostgresSpec) -> dict[str, str]:
    """The TLS query parameters of a service's database URL (libpq's names; see
    ``pinstack_common.db.engine``): ``sslmode``, and ``sslrootcert`` where the chart mounts
    the CA. ``prefer``, libpq's default, is left out."""
    if spec.sslmode == "prefer":
        return {}
    params = {"sslmode": spec.sslmode}
    if spec.ca is not None and spec.sslmode in _VERIFYING:
        params["sslrootcert"] = POSTGRES_CA_FILE
    return params


def postgres_ca_volume(spec: PostgresSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A migration Job's volume and mount for the PostgreSQL CA (none without ``caSecretRef``)."""
    if spec.ca is None:
        return [], []
    volume = {
        "name": "postgres-ca",
        "secret": {
            "secretName": spec.ca.name,
            "defaultMode": 0o444,
            "items": [{"key": spec.ca.key, "path": "ca.crt"}],
        },
    }
    mount = {"name": "postgres-ca", "mountPath": POSTGRES_CA_DIR, "readOnly": True}
    return [volume], [mount]


@dataclass(frozen=True, kw_only=True)
class KafkaAccess:
    """The brokers and the librdkafka properties that secure the operator's admin client."""

    bootstrap_servers: str
    client_config: dict[str, str]


async def kafka_access(api: KubeApi, namespace: str, spec: KafkaSpec) -> KafkaAccess:
    """``spec.kafka`` with its CA bundle and SASL credentials read from their Secrets."""
    config: dict[str, str] = {"security.protocol": spec.security_protocol}
    if spec.security_protocol in ("SSL", "SASL_SSL"):
        config["ssl.endpoint.identification.algorithm"] = "https"
        ca_pem = await _ca_bundle(api, namespace, spec.ca, "Kafka CA bundle")
        if ca_pem:
            config["ssl.ca.pem"] = ca_pem
    if spec.sasl is not None:
        ref = spec.sasl.credentials
        what = "Kafka SASL credentials"
        config["sasl.mechanism"] = spec.sasl.mechanism
        config["sasl.username"] = await _secret_value(
            api, namespace, ref.name, ref.username_key, what
        )
        config["sasl.password"] = await _secret_value(
            api, namespace, ref.name, ref.password_key, what
        )
    return KafkaAccess(bootstrap_servers=spec.bootstrap_servers, client_config=config)
