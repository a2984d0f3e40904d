"""The gRPC server every service runs: health, interceptors, graceful shutdown.

One interceptor does what every RPC needs: restore the request id and caller token from
metadata, authenticate the internal call, count and time it, and map domain errors
(:class:`~pinstack_common.errors.PinstackError`) to status codes. Servicers stay thin.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Never, TypeAlias, TypeVar, cast

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from pinstack_common.context import AUTHORIZATION_KEY, INTERNAL_TOKEN_KEY, caller_authorization
from pinstack_common.errors import PinstackError, RateLimitedError
from pinstack_common.observability.logging import REQUEST_ID_HEADER, bind_request_id
from pinstack_common.observability.metrics import GRPC_SERVER_DURATION, GRPC_SERVER_REQUESTS

__all__ = ["GrpcServer", "PlatformInterceptor", "Registration"]

log = structlog.get_logger(__name__)

# A function that adds one servicer to a server, e.g. ``add_UserServiceServicer_to_server``
# partially applied to the servicer.
Registration = Callable[[grpc.aio.Server], None]

_HEALTH_PREFIX = "/grpc.health.v1.Health/"


_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
if TYPE_CHECKING:  # grpc's classes are generic in its stubs only
    _Context: TypeAlias = grpc.aio.ServicerContext[_Request, _Response]
    # What a ``grpc.aio`` server keeps in a method handler. The stubs describe the handler of
    # the synchronous server (plain functions of a ``grpc.ServicerContext``); under
    # ``grpc.aio`` the same fields hold coroutine and async-generator functions.
    _Unary: TypeAlias = Callable[[_Request, _Context[_Request, _Response]], Awaitable[_Response]]
    _Stream: TypeAlias = Callable[
        [_Request, _Context[_Request, _Response]], AsyncIterator[_Response]
    ]


class PlatformInterceptor(grpc.aio.ServerInterceptor):
    """Request id, internal authentication, metrics and error mapping for every RPC."""

    def __init__(self, *, component: str, internal_token: str) -> None:
        self._component = component
        self._token = internal_token.encode()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails],
            Awaitable[grpc.RpcMethodHandler[_Request, _Response] | None],
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_HEALTH_PREFIX):
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            unary = cast("_Unary[_Request, _Response]", handler.unary_unary)
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream = cast("_Stream[_Request, _Response]", handler.unary_stream)
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _enter(self, context: _Context[_Request, _Response]) -> str | None:
        """Restore context from metadata; return a rejection reason, if any."""
        metadata = dict(context.invocation_metadata() or ())
        bind_request_id(str(metadata.get(REQUEST_ID_HEADER) or ""))
        structlog.contextvars.bind_contextvars(component=self._component)
        authorization = metadata.get(AUTHORIZATION_KEY)
        caller_authorization.set(str(authorization) if authorization else None)
        presented = str(metadata.get(INTERNAL_TOKEN_KEY) or "").encode()
        if not hmac.compare_digest(presented, self._token):
            return "internal call not authenticated"
        return None

    async def _fail(
        self, context: _Context[_Request, _Response], method: str, error: Exception
    ) -> Never:
        if isinstance(error, PinstackError) and error.code != grpc.StatusCode.INTERNAL:
            if isinstance(error, RateLimitedError):
                context.set_trailing_metadata((("retry-after", str(error.retry_after)),))
            self._count(method, error.code)
            await context.abort(error.code, error.message)
        # Anything else is a bug here or upstream (see ``grpc_client.domain_error``): logged.
        log.error("rpc failed", method=method, exc_info=error)
        self._count(method, grpc.StatusCode.INTERNAL)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    def _count(self, method: str, code: grpc.StatusCode) -> None:
        GRPC_SERVER_REQUESTS.labels(self._component, method, code.name).inc()

    def _wrap_unary(
        self, behaviour: _Unary[_Request, _Response], method: str
    ) -> _Unary[_Request, _Response]:
        async def unary(request: _Request, context: _Context[_Request, _Response]) -> _Response:
            if (reason := self._enter(context)) is not None:
                self._count(method, grpc.StatusCode.UNAUTHENTICATED)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
            started = time.perf_counter()
            try:
                response = await behaviour(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # noqa: BLE001 - every failure is mapped to a status here
                await self._fail(context, method, error)
            finally:
                GRPC_SERVER_DURATION.labels(self._component, method).observe(
                    time.perf_counter() - started
                )
            self._count(method, grpc.StatusCode.OK)
            return response

        return unary

    def _wrap_stream(
        self, behaviour: _Stream[_Request, _Response], method: str
    ) -> _Stream[_Request, _Response]:
        async def stream(
            request: _Request, context: _Context[_Request, _Response]
        ) -> AsyncIterator[_Response]:
            if (reason := self._enter(context)) is not None:
                self._count(method, grpc.StatusCode.UNAUTHENTICATED)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
            try:
                async for item in behaviour(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # noqa: BLE001 - every failure is mapped to a status here
                await self._fail(context, method, error)
            self._count(method, grpc.StatusCode.OK)

        return stream


class GrpcServer:
    """A ``grpc.aio`` server with the health service and the platform interceptor."""

    def __init__(
        self,
        *,
        component: str,
        service_names: Sequence[str],
        registrations: Sequence[Registration],
        host: str,
        port: int,
        internal_token: str,
    ) -> None:
        self.component = component
        self._service_names = list(service_names)
        self._server = grpc.aio.server(
            interceptors=[
                PlatformInterceptor(component=component, internal_token=internal_token),
            ],
            options=[("grpc.so_reuseport", 0)],
        )
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        for register in registrations:
            register(self._server)
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        self.address = f"{host}:{self.port}"

    async def start(self) -> None:
        await self._server.start()
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc server started", component=self.component, address=self.address)

    async def stop(self, *, grace: float = 5.0) -> None:
        """Report NOT_SERVING, then drain in-flight RPCs for up to ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self._server.stop(grace)
        log.info("grpc server stopped", component=self.component)
