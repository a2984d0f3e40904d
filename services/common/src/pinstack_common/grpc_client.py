"""gRPC channels to other services: deadlines, metadata propagation, client metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from pinstack_common.context import AUTHORIZATION_KEY, INTERNAL_TOKEN_KEY, caller_authorization
from pinstack_common.logging import REQUEST_ID_HEADER, current_request_id
from pinstack_common.metrics import GRPC_CLIENT_DURATION, GRPC_CLIENT_REQUESTS

__all__ = ["StreamPropagatingInterceptor", "UnaryPropagatingInterceptor", "open_channel"]


# grpc ships no type information, so its base classes are Any to mypy.
_UnaryUnary: Any = grpc.aio.UnaryUnaryClientInterceptor
_UnaryStream: Any = grpc.aio.UnaryStreamClientInterceptor


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


class UnaryPropagatingInterceptor(_Propagation, _UnaryUnary):  # type: ignore[misc]
    """Propagation plus client metrics for unary calls."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        method = _method_name(details.method)
        started = time.perf_counter()
        call = await continuation(self._details(details, streaming=False), request)
        try:
            code = await call.code()
        finally:
            GRPC_CLIENT_DURATION.labels(self._service, method).observe(
                time.perf_counter() - started
            )
        GRPC_CLIENT_REQUESTS.labels(self._service, method, code.name).inc()
        return call


class StreamPropagatingInterceptor(_Propagation, _UnaryStream):  # type: ignore[misc]
    """Propagation for server-streaming calls (no default deadline: streams are long-lived)."""

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        GRPC_CLIENT_REQUESTS.labels(self._service, _method_name(details.method), "STREAM").inc()
        return await continuation(self._details(details, streaming=True), request)


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
