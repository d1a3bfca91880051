"""The observability interceptor of the grpc.aio server.

For every RPC it records the go-grpc-prometheus metrics (``grpc_server_*``) and
emits exactly one canonical log line when the RPC ends::

    rpc grpc_service=ledger.v1.IncidentService grpc_method=AppendEvents grpc_type=unary
        grpc_code=OK duration_ms=3.1 peer=ipv4:10.0.0.7:51234 request_id=...
        principal=bt-itsm org=bt role=provider

While the RPC runs, ``request_id`` and ``rpc_method`` are bound in
``structlog.contextvars`` so every log line of the call carries them; what the
auth layer (or a servicer: ``incident_id``...) binds joins the canonical line.
The context is restored when the RPC ends. Metadata values are never logged:
only ``x-request-id`` is read (and used only if it looks like an id).

Install it outermost, so it also times and counts calls the auth layer refuses::

    interceptor = ObservabilityInterceptor(metrics)
    server = grpc.aio.server(interceptors=[interceptor, AuthInterceptor(...)])
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
import structlog

from ledger.grpc.interceptor import Proceed, Rpc, ServerInterceptor
from ledger.observability.grpc_methods import GRPC_CODE_NAMES, grpc_type
from ledger.observability.labels import UNKNOWN
from ledger.observability.metrics import LedgerMetrics

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
    }
)
_WARNING_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
#: Keys bound by the auth layer / servicers that the canonical line always shows.
_CONTEXT_KEYS = ("principal", "org", "role", "incident_id", "agreement_id")


def request_id_from(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The caller's ``x-request-id`` if it looks like an id, otherwise a new one."""
    for key, value in metadata or ():
        if key.lower() == REQUEST_ID_HEADER and isinstance(value, str):
            if _REQUEST_ID.match(value):
                return value
            break
    return uuid.uuid4().hex


def split_method(full_method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return (service or UNKNOWN, method or UNKNOWN)


def _status_code(value: Any) -> grpc.StatusCode | None:
    if value is None or isinstance(value, grpc.StatusCode):
        return value
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def _peer_of(context: Any) -> str | None:
    if context is None:
        return None
    try:
        peer = context.peer()
    except Exception:  # a call already torn down: the log line goes without it
        return None
    return peer if isinstance(peer, str) else None


class _Call:
    """The bookkeeping of one RPC: started, messages, end (metrics + log line)."""

    def __init__(
        self,
        interceptor: ObservabilityInterceptor,
        labels: tuple[str, str, str],
        request_id: str,
        context: Any,
    ) -> None:
        self._i = interceptor
        self._labels = labels
        self._context = context
        self.request_id = request_id
        self.received = 0
        self.sent = 0
        self._saved: dict[str, Any] = {}
        # Read while the call is alive: after a client cancels or resets a
        # stream, cygrpc frees the call and context.peer() dereferences it
        # (a segfault, not an exception). Nothing in finish() may touch it.
        self._peer = _peer_of(context)
        self._started = 0.0
        self._done = False

    def start(self) -> None:
        metrics = self._i.metrics
        metrics.grpc_started.labels(*self._labels).inc()
        self._saved = structlog.contextvars.get_contextvars()
        _kind, service, method = self._labels
        structlog.contextvars.bind_contextvars(
            request_id=self.request_id, rpc_method=f"{service}/{method}"
        )
        self._started = self._i.clock()

    def finish(self, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        elapsed = max(self._i.clock() - self._started, 0.0)
        code = self._code(exc)
        code_name = GRPC_CODE_NAMES.get(code, "Unknown")
        metrics = self._i.metrics
        metrics.grpc_handled.labels(*self._labels, code_name).inc()
        metrics.grpc_handling_seconds.labels(*self._labels).observe(elapsed)
        if self.received:
            metrics.grpc_msg_received.labels(*self._labels).inc(self.received)
        if self.sent:
            metrics.grpc_msg_sent.labels(*self._labels).inc(self.sent)
        try:
            self._log(code, code_name, elapsed, exc)
        finally:
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(**self._saved)

    def _code(self, exc: BaseException | None) -> grpc.StatusCode:
        set_code = _status_code(self._context.code()) if self._context is not None else None
        if exc is None:
            return set_code or grpc.StatusCode.OK
        if isinstance(exc, _Unimplemented):
            return grpc.StatusCode.UNIMPLEMENTED
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            remaining = self._context.time_remaining() if self._context is not None else None
            if remaining is not None and remaining <= 0:
                return grpc.StatusCode.DEADLINE_EXCEEDED
            return grpc.StatusCode.CANCELLED
        if set_code is not None and set_code is not grpc.StatusCode.OK:
            return set_code  # context.abort(...) or set_code before raising
        return grpc.StatusCode.UNKNOWN

    def _log(
        self, code: grpc.StatusCode, code_name: str, elapsed: float, exc: BaseException | None
    ) -> None:
        grpc_kind, service, method = self._labels
        fields: dict[str, Any] = {
            "grpc_service": service,
            "grpc_method": method,
            "grpc_type": grpc_kind,
            "grpc_code": code_name,
            "duration_ms": round(elapsed * 1000.0, 3),
            "request_id": self.request_id,
        }
        if self._peer is not None:
            fields["peer"] = self._peer
        if grpc_kind != "unary":
            fields["messages_received"] = self.received
            fields["messages_sent"] = self.sent
        bound = structlog.contextvars.get_contextvars()
        fields.update({key: bound[key] for key in _CONTEXT_KEYS if key in bound})
        if code is not grpc.StatusCode.OK and self._context is not None:
            details = self._context.details()
            if isinstance(details, bytes):
                details = details.decode("utf-8", "replace")
            if details:
                fields["grpc_details"] = str(details)[:500]
        log = self._i.logger
        if code in _ERROR_CODES:
            if exc is not None and code is grpc.StatusCode.UNKNOWN:
                fields["exc_info"] = exc
            log.error("rpc", **fields)
        elif code in _WARNING_CODES:
            log.warning("rpc", **fields)
        else:
            log.info("rpc", **fields)


class ObservabilityInterceptor(ServerInterceptor):
    """Metrics and the canonical log line for every RPC (unary and streaming)."""

    def __init__(
        self,
        metrics: LedgerMetrics,
        *,
        logger: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.metrics = metrics
        self.logger = logger if logger is not None else structlog.get_logger("ledger.rpc")
        self.clock = clock

    def unimplemented(self, details: grpc.HandlerCallDetails) -> None:
        # gRPC answers UNIMPLEMENTED. The name came from the client, so it is
        # not used as a label.
        call = _Call(self, ("unary", UNKNOWN, UNKNOWN),
                     request_id_from(details.invocation_metadata), None)
        call.start()
        call.finish(_Unimplemented())

    async def intercept(self, rpc: Rpc, request: Any, context: Any,
                        proceed: Proceed) -> AsyncIterator[Any]:
        service, method = split_method(rpc.method)
        labels = (grpc_type(rpc.request_streaming, rpc.response_streaming), service, method)
        call = _Call(self, labels, request_id_from(rpc.metadata), context)
        call.start()
        if rpc.request_streaming:
            request = _counted(request, call)
        else:
            call.received = 1
        try:
            async for response in proceed(request, _CountedWrites(context, call) if rpc.writes
                                          else context):
                call.sent += 1
                yield response
        except BaseException as exc:
            call.finish(exc)
            raise
        call.finish(None)


class _Unimplemented(Exception):
    pass


def _counted(requests: Any, call: _Call) -> AsyncIterator[Any]:
    async def gen() -> AsyncIterator[Any]:
        async for request in requests:
            call.received += 1
            yield request

    return gen()


class _CountedWrites:
    """The call's context as the handler sees it, counting the messages it
    writes with ``context.write`` (response streams that do not yield)."""

    __slots__ = ("_call", "_context")

    def __init__(self, context: Any, call: _Call) -> None:
        self._context = context
        self._call = call

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._call.sent += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)
