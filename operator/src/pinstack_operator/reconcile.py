"""The one level-triggered reconcile of a PinstackStack, and its reclaim on deletion.

Each pass reads the world, makes it match the spec (every step idempotent), and writes the
status conditions through server-side apply. It never sleeps: the caller decides when to look
again (kopf retries, the drift timer, Job events).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException

from pinstack_operator.conditions import (
    Clock,
    ConditionResult,
    merge_conditions,
    phase_for,
    ready_condition,
)
from pinstack_operator.connectivity import (
    ConnectionSecretMissingError,
    KafkaAccess,
    kafka_access,
    postgres_ca_bundle,
)
from pinstack_operator.credentials import (
    decode_secret_data,
    generate_token,
    signing_key_material,
)
from pinstack_operator.databases import AdminConnection, PostgresAdmin
from pinstack_operator.events import EventRecorder
from pinstack_operator.kubeapi import KubeApi, NotFoundError
from pinstack_operator.migrations import MigrationState, reconcile_migrations
from pinstack_operator.models import GROUP, KIND, VERSION, StackSpec
from pinstack_operator.monitoring import MONITORING_NOT_OURS, reconcile_monitoring
from pinstack_operator.provisioning import (
    DB_ERRORS,
    OWNED_BY_ANOTHER_STACK,
    database_grants,
    provision_databases,
)
from pinstack_operator.resources import (
    RERUN_ANNOTATION,
    StackRef,
    internal_token_secret,
    internal_token_secret_name,
    signing_key_secret,
    signing_key_secret_name,
    stack_secret_names,
)
from pinstack_operator.topics import TopicAdmin

__all__ = [
    "RECLAIM_FAILED",
    "AdminCredentialsMissingError",
    "Outcome",
    "ReclaimError",
    "Reconciler",
    "stack_ref",
]

logger = logging.getLogger(__name__)


RECLAIM_FAILED = "ReclaimFailed"

# Not-ready reasons that resolve without a retry: watched by other means (Job events, the drift
# timer), or waiting for the user (an explicit migration re-run, an ownership hand-over).
_NOT_RETRIED = (
    frozenset(
        {"MigrationsRunning", "WaitingForDatabases", "MigrationFailed", OWNED_BY_ANOTHER_STACK}
    )
    | MONITORING_NOT_OURS
)


class AdminCredentialsMissingError(LookupError):
    """The PostgreSQL admin Secret (or one of its keys) is missing."""


class ReclaimError(RuntimeError):
    """``reclaimPolicy: Delete`` could not remove something; ``reason`` is the condition's."""

    def __init__(self, *, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a reconcile pass found."""

    ready: bool
    conditions: tuple[ConditionResult, ...]

    def condition(self, kind: str) -> ConditionResult:
        return next(item for item in self.conditions if item.type == kind)

    @property
    def transient(self) -> list[ConditionResult]:
        """Failures worth retrying with backoff (infrastructure not there yet)."""
        return [c for c in self.conditions
                if not c.ok and c.type != "Ready" and c.reason not in _NOT_RETRIED]  # fmt: skip


def _tag(reference: str) -> str:
    """``1.2.0`` of ``registry:5000/pinstack:1.2.0``; the digest of ``repo@sha256:...``."""
    if "@" in reference:
        return reference.split("@", 1)[1]
    last = reference.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _image_tag(migrations: MigrationState, *, spec: StackSpec, previous: str | None) -> str | None:
    """``status.imageTag``: the tag every service's schema was last migrated with, once they
    agree and nothing is pending (``spec.image.tag`` when nothing migrates); else as before."""
    if not migrations.condition.ok:
        return previous
    if not migrations.services:
        return _tag(spec.image.reference)
    images = migrations.images
    if len(images) == 1 and all(entry.image for entry in migrations.services):
        return _tag(next(iter(images)))
    return previous


def stack_ref(body: Mapping[str, Any]) -> StackRef:
    metadata = body["metadata"]
    return StackRef(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"])


@dataclass(kw_only=True)
class Reconciler:
    """Reconciles stacks against one cluster; external admin clients are built per pass."""

    api: KubeApi
    clock: Clock
    events: EventRecorder
    postgres_factory: Callable[[AdminConnection], PostgresAdmin] = field(
        default=lambda connection: PostgresAdmin(connection=connection)
    )
    topics_factory: Callable[[KafkaAccess], TopicAdmin] = field(
        default=lambda access: TopicAdmin(
            bootstrap_servers=access.bootstrap_servers, client_config=access.client_config
        )
    )
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, uid: str) -> asyncio.Lock:
        """One pass at a time per stack (change handlers, the timer and Job events overlap)."""
        return self._locks.setdefault(uid, asyncio.Lock())

    async def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        stack = stack_ref(body)
        async with self.lock(stack.uid):
            current = await self.api.find(
                f"{GROUP}/{VERSION}", KIND, namespace=stack.namespace, name=stack.name
            )
            if current is None or current["metadata"].get("uid") != stack.uid:
                return Outcome(ready=False, conditions=())
            return await self._reconcile(stack, current)

    async def _reconcile(self, stack: StackRef, body: Mapping[str, Any]) -> Outcome:
        spec = StackSpec.parse(body["spec"])
        generation = int(body["metadata"].get("generation", 0))
        await self._auth_secrets(stack)
        databases, oids = await self._databases(stack, spec)
        topics = await self._topics(stack, spec)
        previous = body.get("status") or {}
        migrations = await reconcile_migrations(
            self.api,
            stack,
            spec=spec,
            databases=oids if databases.ok else None,
            rerun=str((body["metadata"].get("annotations") or {}).get(RERUN_ANNOTATION, "")),
            previous=previous.get("migrations") or [],
        )
        monitoring = await reconcile_monitoring(self.api, stack, spec=spec)
        parts = [databases, topics, migrations.condition, monitoring]
        # Monitoring that is not the operator's to do (no Prometheus Operator, or the chart owns
        # it) is reported, but does not keep the stack from being Ready.
        gating = [part for part in parts if part.reason not in MONITORING_NOT_OURS]
        ready = ready_condition(gating)
        conditions = (ready, *parts)
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "phase": phase_for(gating),
            "conditions": merge_conditions(
                previous=(body.get("status") or {}).get("conditions") or [],
                results=conditions,
                generation=generation,
                clock=self.clock,
            ),
            "databases": sorted(s.database for s in spec.database_services if s.database)
            if databases.ok
            else [],
            "topics": sorted(topic.name for topic in spec.topics) if topics.ok else [],
        }
        for name in sorted(set(status["databases"]) - set(previous.get("databases") or [])):
            message = f"Provisioned database {name} and its role"
            await self.events.normal(stack, reason="Provisioned", message=message)
        if migrations.services:
            status["migrations"] = [entry.as_status() for entry in migrations.services]
        image_tag = _image_tag(migrations, spec=spec, previous=previous.get("imageTag"))
        if image_tag:
            status["imageTag"] = image_tag
        try:
            await self._write_status(stack, status)
        except NotFoundError:
            logger.info("stack %s/%s went away during the pass", stack.namespace, stack.name)
        return Outcome(ready=ready.ok, conditions=conditions)

    async def _auth_secrets(self, stack: StackRef) -> None:
        """The JWT signing key and internal service token: generated once, then kept."""
        key_name = signing_key_secret_name(stack)
        existing = decode_secret_data(
            await self.api.find("v1", "Secret", namespace=stack.namespace, name=key_name)
        )
        material = signing_key_material(existing)
        await self.api.apply(signing_key_secret(stack, material=material))
        token_name = internal_token_secret_name(stack)
        token = (
            decode_secret_data(
                await self.api.find("v1", "Secret", namespace=stack.namespace, name=token_name)
            ).get("token")
            or generate_token()
        )
        await self.api.apply(internal_token_secret(stack, token=token))

    async def _write_status(self, stack: StackRef, status: dict[str, Any]) -> None:
        """Server-side apply of the stack's status subresource."""
        await self.api.apply(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "metadata": {"name": stack.name, "namespace": stack.namespace},
                "status": status,
            },
            subresource="status",
        )

    async def admin_connection(self, stack: StackRef, spec: StackSpec) -> AdminConnection:
        ref = spec.postgres.admin_credentials
        secret = await self.api.find("v1", "Secret", namespace=stack.namespace, name=ref.name)
        if secret is None:
            raise AdminCredentialsMissingError(
                f"Secret {stack.namespace}/{ref.name} with the PostgreSQL admin credentials "
                "does not exist"
            )
        data = decode_secret_data(secret)
        if ref.username_key not in data:
            raise AdminCredentialsMissingError(
                f"Secret {stack.namespace}/{ref.name} has no key {ref.username_key!r}"
            )
        return AdminConnection(
            host=spec.postgres.host,
            port=spec.postgres.port,
            user=data[ref.username_key],
            password=data.get(ref.password_key, ""),
            database=spec.postgres.admin_database,
            sslmode=spec.postgres.sslmode,
            ca_pem=await postgres_ca_bundle(self.api, stack.namespace, spec.postgres),
        )

    async def _databases(
        self, stack: StackRef, spec: StackSpec
    ) -> tuple[ConditionResult, dict[str, str]]:
        """``DatabasesReady``, and the oid of each service's database (by service name)."""
        try:
            connection = await self.admin_connection(stack, spec)
        except AdminCredentialsMissingError as error:
            return ConditionResult(
                type="DatabasesReady",
                status="False",
                reason="AdminCredentialsMissing",
                message=str(error),
            ), {}
        except ConnectionSecretMissingError as error:
            return ConditionResult(
                type="DatabasesReady",
                status="False",
                reason="ConnectionSecretMissing",
                message=str(error),
            ), {}
        return await provision_databases(
            self.api, stack, spec=spec, postgres=self.postgres_factory(connection)
        )

    async def _topics(self, stack: StackRef, spec: StackSpec) -> ConditionResult:
        kind = "TopicsReady"
        if not spec.topics:
            return ConditionResult(type=kind, status="True", reason="NoTopics", message="none")
        try:
            access = await kafka_access(self.api, stack.namespace, spec.kafka)
        except ConnectionSecretMissingError as error:
            return ConditionResult(
                type=kind, status="False", reason="ConnectionSecretMissing", message=str(error)
            )
        admin = self.topics_factory(access)
        try:
            report = await admin.ensure(spec.topics)
        except KafkaException as error:
            return ConditionResult(
                type=kind,
                status="False",
                reason="TopicProvisioningFailed",
                message=f"Kafka at {spec.kafka.bootstrap_servers}: {error.args[0]}",
            )
        for name in report.created:
            await self.events.normal(stack, reason="Created", message=f"Created Kafka topic {name}")
        if report.problems:
            return ConditionResult(
                type=kind,
                status="False",
                reason="TopicProvisioningFailed",
                message="; ".join(report.problems),
            )
        return ConditionResult(
            type=kind, status="True", reason="Provisioned", message=f"{len(report.ready)} topics"
        )

    async def reclaim(self, body: Mapping[str, Any]) -> list[str]:
        """On deletion, what ``reclaimPolicy`` says; returns what was done, for the log.

        ``Retain``: databases, roles, topics and Secrets stay; Secrets lose any owner reference
        to the stack (earlier operator versions set one) so the garbage collector keeps them, and a
        stack created again with the same name adopts them. ``Delete``: databases and roles,
        then topics, then the Secrets (last, so credentials outlive what they open). Raises
        :class:`ReclaimError` when something could not be removed; the caller keeps the
        finalizer and retries.
        """
        stack = stack_ref(body)
        spec = StackSpec.parse(body["spec"])
        async with self.lock(stack.uid):
            if spec.reclaim_policy == "Delete":
                done = await self._reclaim_delete(stack, spec)
            else:
                done = await self._release_secrets(stack, spec)
        self._locks.pop(stack.uid, None)
        return done

    async def _reclaim_delete(self, stack: StackRef, spec: StackSpec) -> list[str]:
        grants = [grant for _, grant, _ in await database_grants(self.api, stack, spec=spec)]
        dropped: list[str] = []
        kept: list[str] = []
        where = f"{spec.postgres.host}:{spec.postgres.port}"
        if grants:
            try:
                connection = await self.admin_connection(stack, spec)
            except AdminCredentialsMissingError as error:
                raise ReclaimError(reason="AdminCredentialsMissing", message=str(error)) from error
            except ConnectionSecretMissingError as error:
                raise ReclaimError(reason="ConnectionSecretMissing", message=str(error)) from error
            try:
                dropped, kept = await self.postgres_factory(connection).drop(grants)
            except DB_ERRORS as error:
                raise ReclaimError(
                    reason="DatabaseDropFailed",
                    message=f"PostgreSQL at {where}: {type(error).__name__}: {error}",
                ) from error
        topics = [topic.name for topic in spec.topics]
        deleted: list[str] = []
        if topics:
            try:
                access = await kafka_access(self.api, stack.namespace, spec.kafka)
                deleted = await self.topics_factory(access).delete(topics)
            except ConnectionSecretMissingError as error:
                raise ReclaimError(reason="ConnectionSecretMissing", message=str(error)) from error
            except KafkaException as error:
                raise ReclaimError(
                    reason="TopicDeletionFailed",
                    message=f"Kafka at {spec.kafka.bootstrap_servers}: {error.args[0]}",
                ) from error
        secrets = [
            name
            for name in stack_secret_names(stack, spec)
            if await self.api.delete("v1", "Secret", namespace=stack.namespace, name=name)
        ]
        return [
            *dropped,
            *(f"kept {reason}" for reason in kept),
            *(f"topic {t}" for t in deleted),
            *(f"Secret {name}" for name in secrets),
        ]

    async def _release_secrets(self, stack: StackRef, spec: StackSpec) -> list[str]:
        """Drop owner references to this stack from its Secrets, so they survive it."""
        kept = []
        for name in stack_secret_names(stack, spec):
            secret = await self.api.find("v1", "Secret", namespace=stack.namespace, name=name)
            if secret is None:
                continue
            owners = [
                ref
                for ref in secret["metadata"].get("ownerReferences") or []
                if ref.get("kind") == KIND
                and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")
                and (ref.get("uid") == stack.uid or ref.get("name") == stack.name)
            ]
            if owners:
                await self.api.patch(
                    "v1",
                    "Secret",
                    namespace=stack.namespace,
                    name=name,
                    patch={
                        "metadata": {
                            "ownerReferences": [
                                {"$patch": "delete", "uid": ref["uid"]} for ref in owners
                            ]
                        }
                    },
                )
            kept.append(f"Secret {name}")
        return kept

    async def report_reclaim_failure(self, body: Mapping[str, Any], error: ReclaimError) -> None:
        """Set ``ReclaimFailed`` (and phase ``Deleting``) on a stack whose reclaim failed."""
        stack = stack_ref(body)
        current = await self.api.find(
            f"{GROUP}/{VERSION}", KIND, namespace=stack.namespace, name=stack.name
        )
        if current is None or current["metadata"].get("uid") != stack.uid:
            return
        status = dict(current.get("status") or {})
        previous = list(status.get("conditions") or [])
        generation = int(current["metadata"].get("generation", 0))
        failed = merge_conditions(
            previous=previous,
            results=[
                ConditionResult(
                    type=RECLAIM_FAILED, status="True", reason=error.reason, message=error.message
                )
            ],
            generation=generation,
            clock=self.clock,
        )
        status["conditions"] = [c for c in previous if c.get("type") != RECLAIM_FAILED] + failed
        status["phase"] = "Deleting"
        await self._write_status(stack, status)
