"""The OpenAPI document against the live gateway: what it claims for every operation holds.

Every answer of the tier is already checked against the document (``conftest.stack``). Here:

- the refusals the document derives for whole kinds of routes are provoked on every operation
  (a bearer route without a token, a value that does not parse, a NUL in the query);
- at the end of the tier, every status an operation documents must have been answered by it at
  least once: a status no test ever saw is a claim without evidence (or a status the route
  cannot give). Load and outage answers (429, 503, 504) are exempt: the tier does not take
  services down per operation (tests/integration and the crash tests provoke them).
"""

from __future__ import annotations

from typing import Any

import pytest

from pinstack_common.validation import VALIDATION_FAILED
from pinstack_gateway.app import openapi_document
from pinstack_gateway.openapi import BEARER_SCHEME, INVALID_INPUT
from tests.contract.conftest import WHOLE_TIER, RunningStack

DOCUMENT = openapi_document()
OPERATIONS = [
    (method.upper(), path, spec)
    for path, item in DOCUMENT["paths"].items()
    for method, spec in item.items()
]
# Load and outage answers: documented on the routes they can reach, not provoked per operation.
UNPROVOKED = frozenset({429, 503, 504})


def _ids(operations: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in operations]


def _url(path: str, spec: dict[str, Any], *, bad: str | None = None) -> str:
    """``path`` with each path parameter filled: ``bad`` for integers, if given, else 1."""
    for parameter in spec.get("parameters", []):
        if parameter["in"] == "path":
            value = "1" if parameter["schema"].get("type") == "integer" else "someone"
            if bad is not None and parameter["schema"].get("type") == "integer":
                value = bad
            path = path.replace(f"{{{parameter['name']}}}", value)
    return path


def _error(response: Any, status: int, message: str) -> None:
    assert (response.status_code, response.json()) == (
        status,
        {"status": status, "message": message},
    ), response.text


BEARER = [op for op in OPERATIONS if op[2].get("security") == [{BEARER_SCHEME: []}]]


@pytest.mark.parametrize(("method", "path", "spec"), BEARER, ids=_ids(BEARER))
async def test_bearer_operations_refuse_a_request_without_a_token(
    stack: RunningStack, method: str, path: str, spec: dict[str, Any]
) -> None:
    body: dict[str, Any] | None = {} if "requestBody" in spec else None
    response = await stack.client.request(method, _url(path, spec), json=body)
    _error(response, 401, "unauthenticated")


@pytest.mark.parametrize(("method", "path", "spec"), OPERATIONS, ids=_ids(OPERATIONS))
async def test_every_operation_refuses_a_nul_in_the_query(
    stack: RunningStack, method: str, path: str, spec: dict[str, Any]
) -> None:
    response = await stack.client.request(method, _url(path, spec), params={"q": "a\x00b"})
    _error(response, 400, VALIDATION_FAILED)


PARSING = [op for op in OPERATIONS if INVALID_INPUT in str(op[2]["responses"]["400"])]


@pytest.mark.parametrize(("method", "path", "spec"), PARSING, ids=_ids(PARSING))
async def test_operations_that_parse_refuse_what_does_not(
    stack: RunningStack, method: str, path: str, spec: dict[str, Any]
) -> None:
    """A body that is not JSON, else an integer parameter that is not an integer (from a
    caller with a token: a bearer route refuses the missing token first)."""
    headers = (await stack.register()).headers
    if "requestBody" in spec:
        headers["content-type"] = "application/json"
        response = await stack.client.request(
            method, _url(path, spec), content=b"{", headers=headers
        )
    elif "{" in path and _url(path, spec, bad="x") != _url(path, spec):
        response = await stack.client.request(method, _url(path, spec, bad="x"), headers=headers)
    else:
        integers = [
            p["name"]
            for p in spec["parameters"]
            if p["in"] == "query" and "integer" in str(p["schema"])
        ]
        response = await stack.client.request(
            method, _url(path, spec), params={integers[0]: "x"}, headers=headers
        )
    _error(response, 400, INVALID_INPUT)


async def test_changing_or_deleting_an_account_nobody_has_is_404(stack: RunningStack) -> None:
    """Found missing by the whole-tier check: the document says so, no other test asked."""
    caller = await stack.register()
    nobody = 2**62
    response = await stack.client.put(
        "/api/v1/users", json={"id": nobody, "bio": "x"}, headers=caller.headers
    )
    _error(response, 404, "user not found")
    response = await stack.client.delete(f"/api/v1/users/{nobody}", headers=caller.headers)
    _error(response, 404, "user not found")


def test_every_documented_status_was_answered(stack: RunningStack) -> None:
    """Runs last (``conftest.pytest_collection_modifyitems``), over what the tier received."""
    if not WHOLE_TIER:
        pytest.skip("judges the whole contract tier's answers: run tests/contract entire")
    documented = {
        (f"{method} {path}", int(status))
        for method, path, spec in OPERATIONS
        for status in spec["responses"]
        if int(status) not in UNPROVOKED
    }
    never = sorted(documented - stack.document.seen)
    assert not never, f"documented, never answered in the contract tier: {never}"
