"""The databases step: each service's login role and database on the shared PostgreSQL server
(``pinstack_operator.databases``), then its credentials Secret.

PostgreSQL first, the Secrets after: the Secret's ``pinstack.io/stack-uid`` annotation is what
lets a stack re-created with the same name adopt the databases marked as its predecessor's, so
it is re-labelled only once the databases and roles carry the new stack's marker.
"""

from __future__ import annotations

import logging

import asyncpg
from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_operator.conditions import ConditionResult
from pinstack_operator.credentials import decode_secret_data, generate_password
from pinstack_operator.databases import DatabaseGrant, PostgresAdmin
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.models import ServiceSpec, StackSpec
from pinstack_operator.ownership import Marker
from pinstack_operator.resources import (
    STACK_UID_ANNOTATION,
    StackRef,
    database_secret,
    database_secret_name,
)

__all__ = ["DB_ERRORS", "OWNED_BY_ANOTHER_STACK", "database_grants", "provision_databases"]

logger = logging.getLogger(__name__)

DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
OWNED_BY_ANOTHER_STACK = "OwnedByAnotherStack"


async def database_grants(
    api: KubeApi, stack: StackRef, *, spec: StackSpec
) -> list[tuple[ServiceSpec, DatabaseGrant, str]]:
    """One grant per service, with the password already in its Secret (else a new one) and
    the stack that Secret was last written by (which this stack may adopt from); and the
    Secret's resourceVersion as read ("" when missing)."""
    owner = Marker(stack_uid=stack.uid, stack=f"{stack.namespace}/{stack.name}")
    grants = []
    for service in spec.database_services:
        assert service.database is not None
        name = database_secret_name(stack, service.name)
        secret = await api.find("v1", "Secret", namespace=stack.namespace, name=name)
        writer = ((secret or {}).get("metadata", {}).get("annotations") or {}).get(
            STACK_UID_ANNOTATION
        )
        grant = DatabaseGrant(
            database=service.database,
            role=service.database,
            password=decode_secret_data(secret).get("password") or generate_password(),
            owner=owner,
            adoptable=frozenset({writer} if writer else ()),
        )
        version = str((secret or {}).get("metadata", {}).get("resourceVersion") or "")
        grants.append((service, grant, version))
    return grants


async def provision_databases(
    api: KubeApi, stack: StackRef, *, spec: StackSpec, postgres: PostgresAdmin
) -> tuple[ConditionResult, dict[str, str]]:
    """``DatabasesReady``, and the oid of each service's database (by service name)."""
    kind = "DatabasesReady"
    grants = await database_grants(api, stack, spec=spec)
    try:
        report = await postgres.ensure([g for _, g, _ in grants])
    except DB_ERRORS as error:
        where = f"{spec.postgres.host}:{spec.postgres.port}"
        logger.warning("provisioning databases on %s failed: %s", where, error)
        return ConditionResult(
            type=kind,
            status="False",
            reason="DatabaseProvisioningFailed",
            message=f"PostgreSQL at {where}: {type(error).__name__}: {error}",
        ), {}
    oids: dict[str, str] = {}
    for service, grant, version in grants:
        if grant.database not in report.oids:
            continue
        secret = database_secret(stack, spec=spec, service=service, password=grant.password)
        if version:  # a Secret edited since it was read (a rotated password) is not undone
            secret["metadata"]["resourceVersion"] = version
        try:
            await api.apply(secret)
        except ApiException as error:
            if error.status != 409:
                raise
            return ConditionResult(
                type=kind,
                status="False",
                reason="SecretChanged",
                message=f"Secret {secret['metadata']['name']} changed during the pass; "
                "its password is applied on the next",
            ), {}
        oids[service.name] = report.oids[grant.database]
    if report.refused:
        return ConditionResult(
            type=kind,
            status="False",
            reason=OWNED_BY_ANOTHER_STACK,
            message=f"on {spec.postgres.host}:{spec.postgres.port}: " + "; ".join(report.refused),
        ), oids
    return ConditionResult(
        type=kind,
        status="True",
        reason="Provisioned",
        message=f"{len(oids)} databases with their roles and credential Secrets",
    ), oids
