"""Kafka topics through confluent-kafka's AdminClient.

The AdminClient's futures block, so every admin round trip runs in a worker thread
(``asyncio.to_thread``); the event loop never waits on librdkafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, no __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from pinstack_operator.models import TopicSpec

__all__ = ["TopicAdmin", "TopicReport"]


@dataclass(kw_only=True)
class TopicReport:
    """What one ensure pass did and what it could not do."""

    created: list[str] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class TopicAdmin:
    """Creates, grows, reconfigures and deletes topics on one Kafka cluster."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        client_config: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._client_config = dict(client_config or {})  # TLS/SASL (connectivity.kafka_access)
        self._timeout = timeout
        self._problems: list[str] = []

    def _client(self) -> AdminClient:
        config: dict[str, Any] = {
            "bootstrap.servers": self._bootstrap,
            "socket.timeout.ms": int(self._timeout * 1000),
            # A refused TLS handshake or login reaches only this callback; _partitions_sync
            # adds it to the bare "timed out" the request ends with.
            "error_cb": lambda error: self._problems.append(error.str()),
            **self._client_config,
        }
        return AdminClient(config)

    async def ensure(self, topics: Sequence[TopicSpec]) -> TopicReport:
        return await asyncio.to_thread(self._ensure_sync, list(topics))

    async def partitions(self) -> dict[str, int]:
        """Partition count of every topic (for drift checks and tests)."""
        return await asyncio.to_thread(self._partitions_sync, self._client())

    async def delete(self, names: Sequence[str]) -> list[str]:
        return await asyncio.to_thread(self._delete_sync, list(names))

    def _partitions_sync(self, admin: AdminClient) -> dict[str, int]:
        try:
            metadata = admin.list_topics(timeout=self._timeout)
        except KafkaException as error:
            admin.poll(0)  # serves the error callback
            if not self._problems:
                raise
            cause = error.args[0]
            causes = "; ".join(dict.fromkeys(self._problems))
            raise KafkaException(KafkaError(cause.code(), f"{cause.str()} ({causes})")) from error
        return {name: len(topic.partitions) for name, topic in metadata.topics.items()}

    def _ensure_sync(self, topics: list[TopicSpec]) -> TopicReport:
        admin = self._client()
        report = TopicReport()
        existing = self._partitions_sync(admin)
        self._create(admin, [topic for topic in topics if topic.name not in existing], report)
        self._grow(admin, topics, existing, report)
        self._configure(admin, [t for t in topics if t.config and t.name in existing], report)
        failed = {problem.split(":", 1)[0] for problem in report.problems}
        report.ready = [topic.name for topic in topics if topic.name not in failed]
        return report

    def _create(self, admin: AdminClient, missing: list[TopicSpec], report: TopicReport) -> None:
        if not missing:
            return
        new = [
            NewTopic(
                topic.name,
                num_partitions=topic.partitions,
                replication_factor=topic.replication_factor,
                config=dict(topic.config),
            )
            for topic in missing
        ]
        for name, future in admin.create_topics(new, request_timeout=self._timeout).items():
            try:
                future.result(timeout=self._timeout)
                report.created.append(name)
            except KafkaException as error:
                if error.args and error.args[0].name() == "TOPIC_ALREADY_EXISTS":
                    continue
                report.problems.append(f"{name}: create failed: {error.args[0].str()}")

    def _grow(
        self,
        admin: AdminClient,
        topics: list[TopicSpec],
        existing: dict[str, int],
        report: TopicReport,
    ) -> None:
        grow = [
            NewPartitions(topic.name, topic.partitions)
            for topic in topics
            if topic.name in existing and existing[topic.name] < topic.partitions
        ]
        for topic in topics:
            if topic.name in existing and existing[topic.name] > topic.partitions:
                report.problems.append(
                    f"{topic.name}: has {existing[topic.name]} partitions, more than the "
                    f"{topic.partitions} requested (Kafka cannot remove partitions)"
                )
        if not grow:
            return
        for name, future in admin.create_partitions(grow, request_timeout=self._timeout).items():
            try:
                future.result(timeout=self._timeout)
                report.grown.append(name)
            except KafkaException as error:
                report.problems.append(f"{name}: adding partitions failed: {error.args[0].str()}")

    def _configure(self, admin: AdminClient, topics: list[TopicSpec], report: TopicReport) -> None:
        if not topics:
            return
        resources = [ConfigResource(ResourceType.TOPIC, topic.name) for topic in topics]
        described = admin.describe_configs(resources, request_timeout=self._timeout)
        current: dict[str, dict[str, str | None]] = {}
        for resource, future in described.items():
            try:
                entries = future.result(timeout=self._timeout)
            except KafkaException as error:
                report.problems.append(f"{resource.name}: describe failed: {error.args[0].str()}")
                continue
            current[resource.name] = {key: entry.value for key, entry in entries.items()}
        changes = []
        for topic in topics:
            if topic.name not in current:
                continue
            differing = {
                key: value
                for key, value in topic.config.items()
                if current[topic.name].get(key) != value
            }
            if differing:
                entries = [
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                    for key, value in sorted(differing.items())
                ]
                changes.append(
                    ConfigResource(ResourceType.TOPIC, topic.name, incremental_configs=entries)
                )
        if not changes:
            return
        altered = admin.incremental_alter_configs(changes, request_timeout=self._timeout)
        for resource, future in altered.items():
            try:
                future.result(timeout=self._timeout)
                report.reconfigured.append(resource.name)
            except KafkaException as error:
                report.problems.append(f"{resource.name}: config failed: {error.args[0].str()}")

    def _delete_sync(self, names: list[str]) -> list[str]:
        admin = self._client()
        existing = set(self._partitions_sync(admin))
        targets = [name for name in names if name in existing]
        if not targets:
            return []
        deleted = []
        for name, future in admin.delete_topics(targets, request_timeout=self._timeout).items():
            try:
                future.result(timeout=self._timeout)
                deleted.append(name)
            except KafkaException as error:
                if error.args and error.args[0].name() == "UNKNOWN_TOPIC_OR_PART":
                    continue
                raise
        return deleted
