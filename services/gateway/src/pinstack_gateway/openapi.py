"""The gateway's OpenAPI document and the Swagger UI that renders it, both served by the gateway.

Each route states what it answers: its success payload and the errors only it gives
(:func:`answers`). What every route of a kind answers is added here, derived from the route
itself rather than written on each one:

- every route: 400 ``validation failed`` (``StrictRoute`` refuses NUL and unpaired surrogates in
  any path or query value) and the outages of the service behind it, 503 and 504;
- a route with a body or a non-text parameter: 400 ``invalid input`` (it does not parse);
- a route that depends on ``require_caller``: the ``bearerAuth`` scheme and its 401s.

FastAPI's 422 is removed: the gateway answers request errors with 400 (``errors.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

from pinstack_common.validation import VALIDATION_FAILED
from pinstack_gateway.identity import require_caller
from pinstack_gateway.middleware import swagger_csp
from pinstack_gateway.schemas import Answer, Envelope, ErrorAnswer

__all__ = [
    "BEARER_SCHEME",
    "INVALID_INPUT",
    "OPENAPI_PATH",
    "OUTAGES",
    "TAGS",
    "TOO_MANY_REQUESTS",
    "DocumentedAPI",
    "answers",
    "mount_swagger_ui",
]

OPENAPI_PATH = "/swagger/doc.json"
BEARER_SCHEME = "bearerAuth"
INVALID_INPUT = "invalid input"
TOO_MANY_REQUESTS = "too many requests"
# What any route may answer when the service behind it is down or slow: not the route's doing.
OUTAGES: Mapping[int, str] = {503: "external service unavailable", 504: "external service timeout"}
_UNAUTHENTICATED = ("unauthenticated", "invalid token", "token expired")

TAGS = [
    {"name": "auth", "description": "Accounts and sessions: register, log in, rotate tokens."},
    {"name": "users", "description": "Profiles: look up, search, update, delete."},
    {"name": "posts", "description": "Posts with media and tags."},
    {"name": "relations", "description": "Who follows whom."},
    {"name": "notifications", "description": "The caller's notifications."},
]


def answers(
    payload: Any = None, *, status: int = 200, errors: Mapping[int, Sequence[str]] | None = None
) -> dict[str, Any]:
    """The route decorator's arguments that document what the route answers.

    ``payload`` is the type of ``data`` in the success envelope (``None``: no ``data``; with
    ``status=204``: no body at all); ``errors`` the route's own error messages by status.
    """
    if status == 204:
        model: Any = None
    else:
        model = Answer if payload is None else Envelope[payload]
    return {
        "status_code": status,
        "response_model": model,
        "responses": {
            code: {"model": ErrorAnswer, **_error(code, messages)}
            for code, messages in (errors or {}).items()
        },
    }


def _error(status: int, messages: Iterable[str]) -> dict[str, Any]:
    """The response object of an error: the envelope, with ``message`` one of ``messages``."""
    listed = list(dict.fromkeys(messages))
    return {
        "description": " / ".join(f"`{message}`" for message in listed),
        "content": {
            "application/json": {
                "schema": {
                    "$ref": "#/components/schemas/ErrorAnswer",
                    "properties": {"status": {"const": status}, "message": {"enum": listed}},
                },
                "examples": {
                    message: {"value": {"status": status, "message": message}} for message in listed
                },
            }
        },
    }


def _messages(response: dict[str, Any] | None) -> list[str]:
    if response is None:
        return []
    schema = response["content"]["application/json"]["schema"]
    return list(schema["properties"]["message"]["enum"])


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(sub.call is call or _depends_on(sub, call) for sub in dependant.dependencies)


def _parses(route: APIRoute) -> bool:
    """Whether a request to the route can fail to parse: a body, or a value that is not text."""
    params = [*route.dependant.path_params, *route.dependant.query_params]
    return route.body_field is not None or any(p.field_info.annotation is not str for p in params)


def _add_errors(responses: dict[str, Any], status: int, messages: Iterable[str]) -> None:
    """Merge ``messages`` into the documented answer for ``status``."""
    responses[str(status)] = _error(status, [*_messages(responses.get(str(status))), *messages])


def _complete(document: dict[str, Any], routes: list[BaseRoute]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The `access_token` from register, login or refresh.",
    }
    schemas = components.get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for name, schema in schemas.items():
        if name.startswith("Envelope_"):  # a title per payload: the UI and clients tell them apart
            schema["title"] = name.replace("_", "")
    for context in iter_route_contexts(routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][context.path_format][method.lower()]
            responses: dict[str, Any] = operation["responses"]
            responses.pop("422", None)
            _add_errors(responses, 400, [VALIDATION_FAILED])
            if _parses(route):
                _add_errors(responses, 400, [INVALID_INPUT])
            if _depends_on(route.dependant, require_caller):
                operation["security"] = [{BEARER_SCHEME: []}]
                _add_errors(responses, 401, _UNAUTHENTICATED)
            for status, message in OUTAGES.items():
                _add_errors(responses, status, [message])
            operation["responses"] = dict(sorted(responses.items()))
    return document


class DocumentedAPI(FastAPI):
    """FastAPI whose document is completed as the module docstring says."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _complete(super().openapi(), self.routes)
        return self.openapi_schema


def mount_swagger_ui(app: FastAPI) -> None:
    """Swagger UI 5 (reads OpenAPI 3.1) from the assets that ``fastapi-swagger`` ships: the
    gateway serves its own docs page, no CDN."""
    assets = resources.files("fastapi_swagger") / "resources"
    app.mount("/swagger/static", StaticFiles(directory=str(assets)), name="swagger-static")

    @app.get("/swagger/index.html", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title="Pinstack API",
            swagger_js_url="/swagger/static/swagger-ui-bundle.js",
            swagger_css_url="/swagger/static/swagger-ui.css",
            swagger_favicon_url="/swagger/static/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
        page.headers["content-security-policy"] = swagger_csp(bytes(page.body).decode())
        return page
