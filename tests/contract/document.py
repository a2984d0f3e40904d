"""Every answer of the contract tests, checked against the gateway's own OpenAPI document.

The ``stack`` fixture hands its client's responses to :class:`DocumentCheck`: an answer whose
status the operation does not document, or whose body breaks the documented schema, fails the
test that received it. What was seen is kept, so that a status documented but never seen can be
reported at the end of the tier (``test_openapi.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from jsonschema import Draft202012Validator

__all__ = ["DocumentCheck", "Operation"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


@dataclass
class DocumentCheck:
    document: dict[str, Any]
    seen: set[tuple[str, int]] = field(default_factory=set)
    checked: int = 0

    def __post_init__(self) -> None:
        # In the document's order, which is the gateway's routing order (first match wins).
        self._routes = [
            (_pattern(path), path, item) for path, item in self.document["paths"].items()
        ]

    @property
    def operations(self) -> list[Operation]:
        return [
            Operation(method=method.upper(), path=path, spec=spec)
            for _, path, item in self._routes
            for method, spec in item.items()
        ]

    def operation_for(self, method: str, path: str) -> Operation | None:
        for pattern, template, item in self._routes:
            spec = item.get(method.lower())
            if spec is not None and pattern.fullmatch(path):
                return Operation(method=method.upper(), path=template, spec=spec)
        return None

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook: check one answer (raising fails the test that made it)."""
        operation = self.operation_for(response.request.method, response.request.url.path)
        if operation is None:  # not an API operation: health, metrics, docs, unknown routes
            return
        await response.aread()
        self.check(operation, response.status_code, response.content)

    def check(self, operation: Operation, status: int, body: bytes) -> None:
        documented = operation.spec["responses"].get(str(status))
        assert documented is not None, (
            f"{operation.label} answered {status}, which its OpenAPI operation does not list "
            f"({sorted(operation.spec['responses'])}): {body[:300]!r}"
        )
        content = documented.get("content")
        if content is None:
            assert body == b"", f"{operation.label} {status}: documented empty, got {body[:300]!r}"
        else:
            schema = {
                **content["application/json"]["schema"],
                "components": self.document["components"],
            }
            errors = sorted(Draft202012Validator(schema).iter_errors(json.loads(body)), key=str)
            assert not errors, (
                f"{operation.label} {status}: the body breaks the documented schema: "
                f"{errors[0].message} at {list(errors[0].absolute_path)}; body {body[:300]!r}"
            )
        self.seen.add((operation.label, status))
        self.checked += 1
