"""Every service's Alembic history goes down to nothing and up to head again, on real PostgreSQL."""

from __future__ import annotations

import pytest

from pinstack_cli.components import SERVICES
from pinstack_common import migrations
from pinstack_devinfra.postgres import PostgresServer
from tests.conftest import new_database


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_migrations_go_down_and_up_again(
    postgres_server: PostgresServer, service: str
) -> None:
    package = SERVICES[service].package
    url = new_database(postgres_server, f"{service}_mig")
    migrations.upgrade(package=package, url=url)
    migrations.downgrade(package=package, url=url, revision="base")
    assert await migrations.current_revision(url=url) is None
    migrations.upgrade(package=package, url=url)
    assert await migrations.current_revision(url=url) == migrations.head_revision(package=package)
