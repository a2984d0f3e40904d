"""The real single-node Kafka broker (KRaft) for the Kafka tier, started once per test session.

A missing Java or Maven fails the run with what to install (``KafkaError``): never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pinstack_devinfra.kafka import KafkaBroker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    with KafkaBroker(data_dir=tmp_path_factory.mktemp("kafka")) as broker:
        yield broker
