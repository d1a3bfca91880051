"""The server-wide interceptor that gives every call a status a client can act on.

Installed by ``build_server`` between observability (outermost) and
authentication, around every ledger method:

- a request body that does not decode (protobuf ``DecodeError``, bad UTF-8)
  ends INVALID_ARGUMENT with the field ``request`` before anything else runs:
  the deserializer is wrapped so it never raises inside cygrpc (which would
  answer UNKNOWN with the exception's class name);
- a decoded request outside ``Limits`` ends INVALID_ARGUMENT naming the field
  (ledger.grpc.limits);
- whatever the servicer raises is mapped by ``status_for_exception``
  (ledger.grpc.errors): domain errors as in its table; database unavailability,
  timeouts and contention to UNAVAILABLE / ABORTED with ``RetryInfo``
  (ledger.adapters.db_errors); values out of range to INVALID_ARGUMENT;
  anything else to INTERNAL with the request's id, the exception logged.
  No answer is UNKNOWN and no message names an internal class; messages are
  cut to ``MAX_MESSAGE_CHARS``.

Aborts and cancellations pass through untouched, and nothing here reads the
call's context after the client went away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import structlog
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from ledger.domain.errors import DomainError, InvalidArgument
from ledger.grpc.errors import (
    MAX_MESSAGE_CHARS,
    attempt_of,
    rich_status,
    status_for_exception,
    with_pushback,
)
from ledger.grpc.interceptor import Deserializer, Proceed, Rpc, ServerInterceptor
from ledger.grpc.limits import DEFAULT_LIMITS, Limits, check_request

log = structlog.get_logger("ledger.grpc.guard")

_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _Malformed:
    """What the wrapped deserializer returns for bytes that are not the request type."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _wrap_deserializer(deserialize: Deserializer) -> Deserializer:
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


def _bounded(status: status_pb2.Status) -> status_pb2.Status:
    if len(status.message) > MAX_MESSAGE_CHARS:
        status.message = status.message[: MAX_MESSAGE_CHARS - 3] + "..."
    return status


class GuardInterceptor(ServerInterceptor):
    exempt = _EXEMPT_PREFIXES

    def __init__(self, limits: Limits = DEFAULT_LIMITS,
                 clock: Callable[[], int] = lambda: time.time_ns() // 1000) -> None:
        self.limits = limits
        self.clock = clock

    def request_deserializer(self, deserializer: Deserializer) -> Deserializer:
        return _wrap_deserializer(deserializer)

    async def intercept(self, rpc: Rpc, request: Any, context: Any,
                        proceed: Proceed) -> AsyncIterator[Any]:
        # Client-streaming methods (the ledger has none): refuse nothing, map failures.
        refusal = None if rpc.request_streaming else self._refusal(request)
        if refusal is not None:
            await context.abort_with_status(rpc_status.to_status(_bounded(refusal)))
        try:
            async for response in proceed(request, context):
                yield response
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:
            await self._fail(context, exc, rpc.method)

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
        await context.abort_with_status(
            with_pushback(status, attempt_of(context.invocation_metadata())))
