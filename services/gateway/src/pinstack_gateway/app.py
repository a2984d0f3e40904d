"""Composition root of the gateway: the FastAPI app, its upstreams, and the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from starlette.middleware.cors import CORSMiddleware

from pinstack_common.cache import open_redis
from pinstack_common.observability.telemetry import instrument_fastapi
from pinstack_common.security.revocation import SessionRevocations
from pinstack_common.security.tokens import AccessTokenVerifier
from pinstack_gateway import websocket
from pinstack_gateway.envelope import error
from pinstack_gateway.errors import install_error_handlers
from pinstack_gateway.identity import auth_revocation_authority
from pinstack_gateway.middleware import GatewayMiddleware, SecurityHeadersMiddleware
from pinstack_gateway.openapi import OPENAPI_PATH, TAGS, DocumentedAPI, mount_swagger_ui
from pinstack_gateway.read_timeouts import read_timeout_protocol
from pinstack_gateway.routes import auth, notifications, posts, relations, users
from pinstack_gateway.settings import GatewaySettings
from pinstack_gateway.upstreams import SERVING, Upstreams, proxy

__all__ = [
    "GatewayComponent",
    "ReadinessCheck",
    "create_app",
    "create_component",
    "openapi_document",
    "server_config",
]

ReadinessCheck = Callable[[], Awaitable[None]]


def _documented_api() -> DocumentedAPI:
    """The app with the API's routes: all that the OpenAPI document is made of."""
    app = DocumentedAPI(
        title="Pinstack API",
        version="1.0.0",
        description="The Pinstack HTTP API (wire-compatible with the original gateway).",
        openapi_url=OPENAPI_PATH,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
    )
    for module in (auth, users, posts, relations, notifications):
        app.include_router(module.router)
    return app


def openapi_document() -> dict[str, Any]:
    """The document the gateway serves at ``OPENAPI_PATH``, without starting one: tests build
    their cases (and a client) from it at collection time."""
    return _documented_api().openapi()


def create_app(
    *,
    settings: GatewaySettings,
    upstreams: Upstreams,
    readiness: list[ReadinessCheck] | None = None,
    revocations: SessionRevocations | None = None,
) -> FastAPI:
    app = _documented_api()
    instrument_fastapi(app)  # the HTTP server span that roots each trace, when tracing is on
    app.state.upstreams = upstreams
    app.state.settings = settings
    app.state.revocations = revocations
    app.state.verifier = AccessTokenVerifier(jwks_source=upstreams.jwks)
    app.state.ws_connections = Counter()  # open WebSockets per user id on this gateway
    checks = readiness or []
    install_error_handlers(app)
    app.add_middleware(GatewayMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # off by default: a deployment lists the origins it trusts
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Retry-After"],
        )
    # Outermost: the headers go on every answer, a 413 or a CORS preflight included.
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(websocket.router)
    mount_swagger_ui(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Ready when the gateway itself can serve (answering here, its own checks passing).

        Each service's health is reported in the body (and ``pinstack_upstream_serving``), not
        required: one service restarting must not take every gateway out of its Service; the
        routes of a service that is down answer 503 ``external service unavailable`` meanwhile.
        Redis, the revocation cache of the security path, is reported as ``redis``.
        """
        try:
            await asyncio.gather(*(check() for check in checks))
        except Exception as failure:  # noqa: BLE001 - any failing own check means not ready
            return error(503, f"not ready: {type(failure).__name__}")
        services = await upstreams.health()
        if revocations is None:
            return JSONResponse({"status": "ready", "services": services})
        # Redis backs the revocation check: without it every bearer costs a call to auth (and
        # a 503 if auth is down too). Reported as "degraded", still 200: the edge stays correct.
        services["redis"] = await revocations.redis_status()
        status = "ready" if services["redis"] == SERVING else "degraded"
        return JSONResponse({"status": status, "services": services})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/.well-known/jwks.json", include_in_schema=False)
    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(json.loads(await proxy(request, "auth").jwks()))

    return app


def server_config(app: FastAPI, settings: GatewaySettings) -> uvicorn.Config:
    """The gateway's HTTP server: the one place it is configured (``pinstack up``, ``pinstack
    serve gateway`` in dev mode and in pods all start it through :class:`GatewayComponent`)."""
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
        # X-Forwarded-For/-Proto only from the configured proxies. uvicorn's default believes
        # them from loopback (or $FORWARDED_ALLOW_IPS), which let any local client pick the
        # address its login limit counts against; nobody by default, the peer is the client.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
        # Head and body read deadlines: uvicorn has none (slowloris); see read_timeouts.
        http=read_timeout_protocol(
            header_seconds=settings.http_header_timeout_seconds,
            body_seconds=settings.http_body_timeout_seconds,
        ),
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process's lifecycle owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class GatewayComponent:
    name = "gateway"

    def __init__(
        self, *, settings: GatewaySettings, readiness: list[ReadinessCheck] | None = None
    ) -> None:
        self._settings = settings
        self._readiness = readiness or []
        self._upstreams: Upstreams | None = None
        self._redis: Redis | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.app: FastAPI | None = None

    @property
    def settings(self) -> GatewaySettings:
        return self._settings

    @property
    def url(self) -> str:
        if self._server is None or not self._server.servers:
            raise RuntimeError("gateway is not started")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self._settings.http_host}:{port}"

    async def start(self) -> None:
        self._upstreams = Upstreams.open(self._settings)
        self._redis = open_redis(self._settings.redis_url)
        self.app = create_app(
            settings=self._settings,
            upstreams=self._upstreams,
            readiness=self._readiness,
            revocations=SessionRevocations(
                redis=self._redis, authority=auth_revocation_authority(self._upstreams.auth)
            ),
        )
        self._server = _EmbeddedServer(server_config(self.app, self._settings))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("gateway stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._upstreams is not None:
            await self._upstreams.close()
        if self._redis is not None:
            await self._redis.aclose()


def create_component(
    settings: GatewaySettings | None = None, *, readiness: list[ReadinessCheck] | None = None
) -> GatewayComponent:
    return GatewayComponent(settings=settings or GatewaySettings(), readiness=readiness)
