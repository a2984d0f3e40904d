"""gRPC channels to other services: deadlines, metadata propagation, client metrics, and the
one translation of a failed call back into a domain error."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, overload

import grpc
from grpc_health.v1 import health_pb2

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack_common.context import AUTHORIZATION_KEY, INTERNAL_TOKEN_KEY, caller_authorization
from pinstack_common.errors import (
    AlreadyExistsError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    PinstackError,
    RateLimitedError,
    UnauthenticatedError,
    UnavailableError,
    UpstreamFailedError,
    UpstreamTimeoutError,
)
from pinstack_common.observability.logging import REQUEST_ID_HEADER, current_request_id
from pinstack_common.observability.metrics import GRPC_CLIENT_DURATION, GRPC_CLIENT_REQUESTS

__all__ = [
    "StreamPropagatingInterceptor",
    "UnaryPropagatingInterceptor",
    "domain_error",
    "fetch_jwks",
    "health_check",
    "open_channel",
]

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


class _Propagation:
    """Adds the internal token, request id and caller token; applies a default deadline."""

    def __init__(self, *, service: str, internal_token: str, timeout: float) -> None:
        self._service = service
        self._token = internal_token
        self._timeout = timeout

    def _details(
        self, details: grpc.aio.ClientCallDetails, *, streaming: bool
    ) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or ())
        metadata.append((INTERNAL_TOKEN_KEY, self._token))
        if (request_id := current_request_id()) is not None:
            metadata.append((REQUEST_ID_HEADER, request_id))
        if (authorization := caller_authorization.get()) is not None:
            metadata.append((AUTHORIZATION_KEY, authorization))
        timeout = details.timeout
        if timeout is None and not streaming:
            timeout = self._timeout
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=timeout,
            metadata=grpc.aio.Metadata(*metadata),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


class UnaryPropagatingInterceptor(_Propagation, grpc.aio.UnaryUnaryClientInterceptor):
    """Propagation plus client metrics for unary calls."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Request],
            Awaitable[grpc.aio.UnaryUnaryCall[_Request, _Response]],
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Request,
    ) -> grpc.aio.UnaryUnaryCall[_Request, _Response]:
        method = _method_name(client_call_details.method)
        started = time.perf_counter()
        call = await continuation(self._details(client_call_details, streaming=False), request)
        try:
            code = await call.code()
        finally:
            GRPC_CLIENT_DURATION.labels(self._service, method).observe(
                time.perf_counter() - started
            )
        GRPC_CLIENT_REQUESTS.labels(self._service, method, code.name).inc()
        return call


class StreamPropagatingInterceptor(_Propagation, grpc.aio.UnaryStreamClientInterceptor):
    """Propagation for server-streaming calls (no default deadline: streams are long-lived)."""

    async def intercept_unary_stream(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, _Request],
            Awaitable[grpc.aio.UnaryStreamCall[_Request, _Response]],
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: _Request,
    ) -> grpc.aio.UnaryStreamCall[_Request, _Response]:
        method = _method_name(client_call_details.method)
        GRPC_CLIENT_REQUESTS.labels(self._service, method, "STREAM").inc()
        return await continuation(self._details(client_call_details, streaming=True), request)


def _method_name(method: str | bytes) -> str:
    text = method.decode() if isinstance(method, bytes) else method
    return text.rsplit("/", 1)[-1]


def open_channel(
    *, address: str, service: str, internal_token: str, timeout: float
) -> grpc.aio.Channel:
    """An insecure channel (the mesh or NetworkPolicy secures the wire) with the interceptor."""
    return grpc.aio.insecure_channel(
        address,
        # grpc.aio files each interceptor under one call kind only (an if/elif on its base
        # classes), so unary and streaming calls need an interceptor object each.
        interceptors=[
            UnaryPropagatingInterceptor(
                service=service, internal_token=internal_token, timeout=timeout
            ),
            StreamPropagatingInterceptor(
                service=service, internal_token=internal_token, timeout=timeout
            ),
        ],
        options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.enable_retries", 1),
            # gRPC's default reconnect backoff grows to 120 s: a gateway that started before its
            # backends (as pods do) kept failing fast for minutes after they came up. Seen on
            # the cluster tier; a backend that returns is now used within about two seconds.
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.min_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ],
    )


_Ask = health_pb2.HealthCheckRequest
_Answer = health_pb2.HealthCheckResponse


@overload
def health_check(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable[_Ask, _Answer]: ...
@overload
def health_check(channel: grpc.Channel) -> grpc.UnaryUnaryMultiCallable[_Ask, _Answer]: ...
def health_check(
    channel: grpc.aio.Channel | grpc.Channel,
) -> grpc.aio.UnaryUnaryMultiCallable[_Ask, _Answer] | grpc.UnaryUnaryMultiCallable[_Ask, _Answer]:
    """The standard ``grpc.health.v1.Health/Check`` method on ``channel``, typed.

    ``grpc_health``'s own ``HealthStub`` declares no methods to a type checker, so calling
    through it would be ``Any``; this is the same method with its messages spelled out.
    """
    return channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=_Ask.SerializeToString,
        response_deserializer=_Answer.FromString,
    )


# The answer a caller gives is the answer the callee would have given the gateway directly:
# a hop is transparent. The callee's interceptor put the contract's message in ``details``, so
# client mistakes pass it on unchanged (``username already exists`` stays exact to the HTTP
# answer). The gateway reads OUT_OF_RANGE and FAILED_PRECONDITION as 400 too.
_CLIENT_MISTAKES: dict[grpc.StatusCode, type[PinstackError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidArgumentError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: ForbiddenError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
}


def domain_error(failure: grpc.aio.AioRpcError) -> PinstackError:
    """The domain error for a failed call to another service: raise it ``from failure``.

    One policy for every service-to-service call, so one upstream failure gives one HTTP
    answer whichever service met it (the gateway maps the resulting status codes in
    ``pinstack_gateway.errors``):

    =====================================================  ===========================  ====
    upstream status                                        domain error (message)       HTTP
    =====================================================  ===========================  ====
    INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION    InvalidArgumentError (same)  400
    UNAUTHENTICATED                                        UnauthenticatedError (same)  401
    PERMISSION_DENIED                                      ForbiddenError (same)        403
    NOT_FOUND                                              NotFoundError (same)         404
    ALREADY_EXISTS                                         AlreadyExistsError (same)    409
    RESOURCE_EXHAUSTED                                     RateLimitedError (same,      429
                                                           its ``retry-after``)
    UNAVAILABLE                                            UnavailableError             503
                                                           (external service
                                                           unavailable)
    DEADLINE_EXCEEDED                                      UpstreamTimeoutError         504
                                                           (external service timeout)
    anything else (CANCELLED, UNKNOWN, ABORTED,            UpstreamFailedError          500
    UNIMPLEMENTED, INTERNAL, DATA_LOSS, OK)                (internal error, logged)
    =====================================================  ===========================  ====

    Why: the HTTP answer must not depend on the path a request took. A timeout is the
    contract's 504 and an outage its 503 whether the gateway met them or a service behind it
    did; a status that is nobody's mistake and no outage is a bug, which the contract answers
    500 and the calling service's interceptor logs.
    """
    code = failure.code()
    details = failure.details() or "internal server error"
    if code in _CLIENT_MISTAKES:
        return _CLIENT_MISTAKES[code](details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RateLimitedError(details, retry_after=_retry_after(failure))
    if code == grpc.StatusCode.UNAVAILABLE:
        return UnavailableError("external service unavailable")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return UpstreamTimeoutError()
    return UpstreamFailedError()


class _Trailers(Protocol):
    def trailing_metadata(self) -> grpc.aio.Metadata | None: ...


def _retry_after(failure: _Trailers) -> int:
    # Read through a Protocol: the stubs type ``AioRpcError.trailing_metadata`` as possibly Any.
    value = dict(failure.trailing_metadata() or ()).get("retry-after", "1")
    text = value.decode() if isinstance(value, bytes) else value
    return int(text) if text.isdigit() else 1


async def fetch_jwks(auth: auth_pb2_grpc.AuthServiceAsyncStub) -> str:
    """The auth service's public signing keys, as JWKS JSON.

    ``wait_for_ready``: right after an install or an auth restart the channel may still be in its
    reconnect backoff; the first bearer waits for auth (within the deadline) rather than being
    refused with UNAVAILABLE.
    """
    reply = await auth.GetJwks(auth_pb2.GetJwksRequest(), wait_for_ready=True)
    return str(reply.jwks_json)
