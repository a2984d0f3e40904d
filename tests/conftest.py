"""Session-wide real servers shared by every tier: PostgreSQL, Redis and Kafka, started once
per run (Kafka only when a test asks for it).

Tests get their own databases (``fresh_database``) so modules never see each other's rows.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import argon2
import pytest

from pinstack_devinfra.kafka import KafkaBroker
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer


def pytest_configure(config: pytest.Config) -> None:
    """Deadlines for the suite's own stacks: far beyond any busy machine's latency.

    The 5 s production default turned a loaded CI machine's slowness into DEADLINE_EXCEEDED
    where a test expected the service's real answer. Tests that are about deadlines set their
    own. Processes the tests start (``pinstack up``, ``dev up``) inherit it.
    """
    os.environ.setdefault("PINSTACK_RPC_TIMEOUT_SECONDS", "60")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer(data_dir=tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(data_dir=tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The real single-node broker (KRaft). A missing Java or Maven fails the run with what
    to install (``KafkaError``): never a skip."""
    with KafkaBroker(data_dir=tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


def new_database(server: PostgresServer, prefix: str) -> str:
    """Create a uniquely named database and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server.ensure_database(name)
    return server.url(name)


@pytest.fixture
def fresh_database(postgres_server: PostgresServer) -> str:
    return new_database(postgres_server, "test")


@pytest.fixture
def argon2_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[str]]]:
    """Argon2 hashes block until the gate (the Event) opens; the list names the passwords whose
    hash started. Holding hashes makes queueing tests independent of timing."""
    opened = threading.Event()
    entered: list[str] = []
    real = argon2.PasswordHasher.hash

    def held(self: argon2.PasswordHasher, password: str | bytes, **kwargs: Any) -> str:
        entered.append(str(password))
        opened.wait(timeout=60)
        return real(self, password, **kwargs)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", held)
    yield opened, entered
    opened.set()  # never leave a worker thread behind
