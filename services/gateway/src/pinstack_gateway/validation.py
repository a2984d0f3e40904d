"""What every request must satisfy before the gateway builds an RPC from it, in one place.

- Bodies are strict JSON (RFC 8259, :mod:`pinstack_common.strict_json`): a body that does not
  parse is 400 ``invalid input``; ``NaN``, ``Infinity``, numbers out of double range, and text with
  a NUL or an unpaired surrogate are 400 ``validation failed``. Text in path and query parameters
  obeys the same text rule. :class:`StrictRoute` applies all of it to every route of a router.
- Numbers must fit the protobuf fields they travel in: ids are int64 and at least 1
  (:func:`pinstack_common.validation.positive_id`); pages, offsets, limits and positions are
  int32 (:func:`int32`, :func:`page_number`), a page's limit at most ``PAGE_LIMIT_MAX``. Beyond
  that, protobuf refuses to build the request.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.routing import APIRoute

from pinstack_common.errors import InvalidArgumentError
from pinstack_common.strict_json import JSONRuleError, check_text, loads
from pinstack_common.validation import INT64_MAX, PAGE_LIMIT_MAX, VALIDATION_FAILED

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "Id",
    "IdFilter",
    "Limit",
    "Offset",
    "Page",
    "StrictRoute",
    "int32",
    "page_limit",
    "page_number",
]

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)

_UNSET: Any = object()


def _bounded(minimum: int, maximum: int) -> Callable[[dict[str, Any]], None]:
    """Document the range a number is checked against (the checks below, not FastAPI, refuse
    what is out of it, with the contract's message)."""

    def document(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "integer":
                branch.update(minimum=minimum, maximum=maximum)

    return document


Id = Annotated[int, Path(json_schema_extra=_bounded(1, INT64_MAX))]
IdFilter = Annotated[int | None, Query(json_schema_extra=_bounded(1, INT64_MAX))]
Page = Annotated[int, Query(json_schema_extra=_bounded(1, INT32_MAX))]
Limit = Annotated[int, Query(json_schema_extra=_bounded(1, PAGE_LIMIT_MAX))]
Offset = Annotated[int, Query(json_schema_extra=_bounded(0, INT32_MAX))]


def int32(value: int, *, minimum: int = INT32_MIN, message: str = VALIDATION_FAILED) -> int:
    """A value bound for an int32 field, at least ``minimum``."""
    if not minimum <= value <= INT32_MAX:
        raise InvalidArgumentError(message)
    return value


def page_limit(limit: int, *, message: str = VALIDATION_FAILED) -> int:
    """``limit`` within 1..``PAGE_LIMIT_MAX``."""
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise InvalidArgumentError(message)
    return limit


def page_number(page: int, limit: int, *, message: str = VALIDATION_FAILED) -> None:
    """``page`` an int32 of at least 1, ``limit`` within 1..``PAGE_LIMIT_MAX``."""
    int32(page, minimum=1, message=message)
    page_limit(limit, message=message)


def _check_texts(values: Iterable[str]) -> None:
    try:
        for value in values:
            check_text(value)
    except JSONRuleError as error:
        raise InvalidArgumentError(VALIDATION_FAILED) from error


class _StrictRequest(Request):
    """A request whose JSON body is read with the strict parser (see the module docstring)."""

    _strict_json: Any = _UNSET

    async def json(self) -> Any:
        if self._strict_json is _UNSET:
            body = await self.body()
            try:
                self._strict_json = loads(body)
            except JSONRuleError as error:
                raise InvalidArgumentError(VALIDATION_FAILED) from error
            except (ValueError, RecursionError) as error:
                raise InvalidArgumentError("invalid input") from error
        return self._strict_json


class StrictRoute(APIRoute):
    """Route class for every API router: path, query and body obey the rules above.

    The body is parsed here, before FastAPI's own handler, so a refusal becomes the contract's
    answer through the one error handler; FastAPI then reads the already-parsed value.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        has_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            strict = _StrictRequest(request.scope, request.receive)
            _check_texts(str(value) for value in strict.path_params.values())
            _check_texts(part for pair in strict.query_params.multi_items() for part in pair)
            if has_body and await strict.body():
                await strict.json()
            return await handle(strict)

        return strict_handler
