"""The server-wide interceptor that gives every call a status a client can act on.

Installed by ``build_server`` between observability (outermost) and
authentication, around every ledger method:

- a request body that does not decode (protobuf ``DecodeError``, bad UTF-8)
  ends INVALID_ARGUMENT with the field ``request`` before anything else runs:
  the deserializer is wrapped so it never raises inside cygrpc (which would
  answer UNKNOWN with the exception's class name);
- a decoded request outside ``Limits`` ends INVALID_ARGUMENT naming the field
  (ledger.grpc.limits);
- whatever the servicer raises is mapped by ``status_for_exception``: domain
  errors as in ledger.grpc.errors; database unavailability, timeouts and
  contention to UNAVAILABLE / ABORTED with ``RetryInfo`` (ledger.adapters.db_errors); values out of range
  to INVALID_ARGUMENT; anything else to INTERNAL with the request's id, the
  exception logged. No answer is UNKNOWN and no message names an internal
  class; messages are cut to ``MAX_MESSAGE_CHARS``.

Aborts and cancellations pass through untouched, and nothing here reads the
call's context after the client went away.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from ledger.adapters.db_errors import database_error
from ledger.domain.errors import DomainError, InvalidArgument
from ledger.grpc.errors import MAX_MESSAGE_CHARS, rich_status
from ledger.grpc.limits import DEFAULT_LIMITS, Limits, check_request

log = structlog.get_logger("ledger.grpc.guard")

_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _Malformed:
    """What the wrapped deserializer returns for bytes that are not the request type."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _wrap_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def safe(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception:  # DecodeError, UnicodeDecodeError, RecursionError...
            return _Malformed("the request body is not a valid message of this method's type")

    return safe


def _client_gone(context: Any, exc: BaseException) -> bool:
    if type(exc).__name__ == "ExecuteBatchError":
        return True
    try:
        return bool(context.cancelled())
    except Exception:
        return True


def _with_code(code: int, message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=message)


def status_for_exception(exc: BaseException, request_id: str) -> status_pb2.Status:
    """The status for anything a servicer raised (never UNKNOWN, no class names)."""
    if isinstance(exc, DomainError):
        return rich_status(exc)
    retryable = database_error(exc)
    if retryable is not None:
        return rich_status(retryable)
    if isinstance(exc, OverflowError | ValueError | UnicodeError | RecursionError):
        return rich_status(InvalidArgument("request", "a value is out of the range the ledger computes"))
    return _with_code(code_pb2.INTERNAL, f"internal error (request id {request_id})")


def _bounded(status: status_pb2.Status) -> status_pb2.Status:
    if len(status.message) > MAX_MESSAGE_CHARS:
        status.message = status.message[: MAX_MESSAGE_CHARS - 3] + "..."
    return status


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, limits: Limits = DEFAULT_LIMITS,
                 clock: Callable[[], int] = lambda: time.time_ns() // 1000) -> None:
        self.limits = limits
        self.clock = clock

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(_EXEMPT_PREFIXES):
            return handler
        deserializer = _wrap_deserializer(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), request_deserializer=deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method), request_deserializer=deserializer,
                response_serializer=handler.response_serializer)
        # Client-streaming methods: the ledger has none; refuse nothing, map failures.
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method, streaming=True),
                request_deserializer=deserializer, response_serializer=handler.response_serializer)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(handler.stream_stream, method, streaming=True),
                request_deserializer=deserializer, response_serializer=handler.response_serializer)
        return handler

    def _refusal(self, request: Any) -> status_pb2.Status | None:
        if isinstance(request, _Malformed):
            return rich_status(InvalidArgument("request", request.reason))
        if isinstance(request, Message):
            try:
                check_request(request, self.limits, self.clock)
            except InvalidArgument as error:
                return rich_status(error)
        return None

    async def _fail(self, context: Any, exc: BaseException, method: str) -> None:
        if _client_gone(context, exc):
            # Writing to a call the client cancelled or reset: nobody to answer.
            raise asyncio.CancelledError from None
        request_id = str(structlog.contextvars.get_contextvars().get("request_id", "-"))
        status = _bounded(status_for_exception(exc, request_id))
        if status.code == code_pb2.INTERNAL:
            log.error("rpc failed", method=method, exc_info=exc)
        elif not isinstance(exc, DomainError):
            log.warning("rpc failed", method=method, grpc_code=code_pb2.Code.Name(status.code),
                        error=type(exc).__name__)
        await context.abort_with_status(rpc_status.to_status(status))

    def _unary(self, behavior: Callable[..., Any], method: str,
               streaming: bool = False) -> Callable[[Any, Any], Awaitable[Any]]:
        async def wrapped(request: Any, context: Any) -> Any:
            refusal = None if streaming else self._refusal(request)
            if refusal is not None:
                await context.abort_with_status(rpc_status.to_status(_bounded(refusal)))
            try:
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:
                await self._fail(context, exc, method)

        return wrapped

    def _stream(self, behavior: Callable[..., Any], method: str,
                streaming: bool = False) -> Callable[[Any, Any], Any]:
        if not (inspect.isasyncgenfunction(behavior) or inspect.isgeneratorfunction(behavior)):
            return self._unary(behavior, method, streaming)

        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            refusal = None if streaming else self._refusal(request)
            if refusal is not None:
                await context.abort_with_status(rpc_status.to_status(_bounded(refusal)))
            try:
                responses = behavior(request, context)
                if inspect.isasyncgen(responses):
                    async for item in responses:
                        yield item
                else:
                    for item in responses:
                        yield item
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:
                await self._fail(context, exc, method)

        return wrapped
