"""docs/adding-an-endpoint.md walks through a real route; this keeps it true.

Every path it names must exist, and every code name it cites must still be defined where the page
says, so renaming a piece of the example fails here rather than leaving the page wrong.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "adding-an-endpoint.md").read_text()

# (module, dotted attribute) for each name the page cites.
CITED = [
    ("pinstack.relation.v1.relation_pb2", "ListRelationsRequest"),
    ("pinstack.relation.v1.relation_pb2", "ListRelationsResponse"),
    ("pinstack.relation.v1.relation_pb2_grpc", "RelationServiceServicer"),
    ("pinstack_relation.grpc_api", "RelationServicer.GetFollowers"),
    ("pinstack_relation.grpc_api", "_listing"),
    ("pinstack_relation.usecases", "RelationUseCases.followers"),
    ("pinstack_relation.usecases", "RelationUseCases._list"),
    ("pinstack_relation.clients", "UserDirectory"),
    ("pinstack_common.grpc.user_directory", "GrpcUserDirectory"),
    ("pinstack_common.profiles", "Profile"),
    ("pinstack_common.runtime", "ServiceRuntime.user_directory"),
    ("pinstack_relation.repository", "RelationRepository.related"),
    ("pinstack_relation.models", "follows"),
    ("pinstack_relation.app", "RelationComponent.wire"),
    ("pinstack_common.validation", "PAGE_LIMIT_MAX"),
    ("pinstack_common.validation", "VALIDATION_FAILED"),
    ("pinstack_common.grpc.client", "domain_error"),
    ("pinstack_common.db.migrations", "platform_tables_revision"),
    ("pinstack_gateway.routes.relations", "followers"),
    ("pinstack_gateway.routes.relations", "_USER_NOT_FOUND"),
    ("pinstack_gateway.validation", "Id"),
    ("pinstack_gateway.validation", "Page"),
    ("pinstack_gateway.validation", "Limit"),
    ("pinstack_gateway.upstreams", "proxy"),
    ("pinstack_gateway.envelope", "ok"),
    ("pinstack_gateway.openapi", "answers"),
    ("pinstack_gateway.schemas", "Followers"),
    ("tests.polling", "eventually"),
    ("tests.polling", "wait_until"),
    ("tests.integration.test_relation_usecases", "test_one_batched_lookup_per_page_in_page_order"),
    ("tests.contract.test_relations", "test_lists_paginate_newest_first"),
    ("tests.contract.test_relations", "test_list_errors"),
]


@pytest.mark.parametrize(("module", "attribute"), CITED, ids=[a for _, a in CITED])
def test_every_cited_name_exists_and_is_on_the_page(module: str, attribute: str) -> None:
    target: object = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    assert attribute.rsplit(".", maxsplit=1)[-1] in PAGE


def test_every_path_on_the_page_exists() -> None:
    paths = set(re.findall(r"`((?:services|proto|scripts|tests|docs)/[\w./-]+)`", PAGE))
    assert len(paths) >= 10  # the regex still finds the page's paths
    missing = sorted(p for p in paths if not (REPO / p.split("::")[0]).exists())
    assert missing == []


def test_the_page_cites_a_real_migration() -> None:
    versions = REPO / "services/relation/src/pinstack_relation/migrations/versions"
    assert "`0002_processed_events.py`" in PAGE
    assert (versions / "0002_processed_events.py").exists()
