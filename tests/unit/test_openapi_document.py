"""The gateway's OpenAPI document, and the check the contract tier runs every answer through."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pinstack_gateway.app import openapi_document
from pinstack_gateway.openapi import BEARER_SCHEME
from tests.contract.document import DocumentCheck

DOCUMENT = openapi_document()
OPERATIONS = [spec for item in DOCUMENT["paths"].values() for spec in item.values()]


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_every_operation_documents_its_success_and_no_422() -> None:
    assert len(OPERATIONS) == 29
    for spec in OPERATIONS:
        responses = spec["responses"]
        assert "422" not in responses
        successes = [status for status in responses if status.startswith("2")]
        assert len(successes) == 1, spec["operationId"]
        success = responses[successes[0]]
        assert successes[0] == "204" or success["content"]["application/json"]["schema"]
    assert DOCUMENT["components"]["securitySchemes"][BEARER_SCHEME]["scheme"] == "bearer"


def test_bearer_operations_are_the_ones_with_a_caller() -> None:
    bearer = {spec["operationId"] for spec in OPERATIONS if spec.get("security")}
    assert len(bearer) == 17
    assert "login_api_v1_auth_login_post" not in bearer
    assert "update_password_api_v1_auth_update_password_post" in bearer


def test_the_check_accepts_answers_as_documented() -> None:
    check = DocumentCheck(document=DOCUMENT)
    login = check.operation_for("POST", "/api/v1/auth/login")
    assert login is not None
    check.check(
        login, 200, _body({"status": 200, "data": {"access_token": "a", "refresh_token": "r"}})
    )
    check.check(login, 401, _body({"status": 401, "message": "invalid credentials"}))
    delete = check.operation_for("DELETE", "/api/v1/users/7")
    assert delete is not None
    check.check(delete, 204, b"")
    assert check.checked == 3
    assert ("POST /api/v1/auth/login", 401) in check.seen


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "complaint"),
    [
        ("POST", "/api/v1/auth/login", 422, {"status": 422, "message": "x"}, "does not list"),
        ("POST", "/api/v1/auth/login", 401, {"status": 401, "message": "nope"}, "schema"),
        (
            "POST",
            "/api/v1/auth/login",
            200,
            {"status": 200, "data": {"access_token": "a"}},
            "schema",
        ),
        (
            "GET",
            "/api/v1/users/search",
            200,
            {"status": 200, "data": {"users": [], "total": 0, "x": 1}},
            "schema",
        ),
        (
            "GET",
            "/api/v1/users/1",
            200,
            {
                "status": 200,
                "data": {
                    "id": 1,
                    "username": "a",
                    "email": "e",
                    "created_at": "t",
                    "updated_at": "t",
                    "bio": None,
                },
            },
            "schema",
        ),
        ("DELETE", "/api/v1/users/1", 204, {"status": 204}, "documented empty"),
    ],
)
def test_the_check_refuses_what_the_document_does_not_say(
    method: str, path: str, status: int, body: Any, complaint: str
) -> None:
    check = DocumentCheck(document=DOCUMENT)
    operation = check.operation_for(method, path)
    assert operation is not None
    with pytest.raises(AssertionError, match=complaint):
        check.check(operation, status, _body(body))


def test_routing_prefers_the_route_the_gateway_picks() -> None:
    check = DocumentCheck(document=DOCUMENT)
    search = check.operation_for("GET", "/api/v1/users/search")
    assert search is not None
    assert search.path == "/api/v1/users/search"
    assert check.operation_for("GET", "/healthz") is None
