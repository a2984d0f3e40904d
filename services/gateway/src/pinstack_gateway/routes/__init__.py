"""HTTP routes, one module per domain: parse, call one RPC, map the result."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_links"]


def openapi_links(parameter: str, pointer: str, *operation_ids: str) -> dict[str, Any]:
    """OpenAPI links from a success to the operations that take the id it returns: clients and
    the stateful property tests follow them (create, then read, update, delete)."""
    return {
        operation_id.split("_api_")[0]: {
            "operationId": operation_id,
            "parameters": {parameter: f"$response.body#{pointer}"},
        }
        for operation_id in operation_ids
    }
