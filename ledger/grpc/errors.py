"""The one place where exceptions become gRPC statuses.

Every refusal travels as a ``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer, with details a client can act on without parsing prose:

==================  ===================  =============================================
domain error        status code          details
==================  ===================  =============================================
InvalidArgument     INVALID_ARGUMENT     BadRequest.FieldViolation(field, description)
TimelineViolation   FAILED_PRECONDITION  PreconditionFailure.Violation(type=TIMELINE,
                                         subject=rule) + ErrorInfo(INVALID_TIMELINE,
                                         metadata rule, index)
NotFound            NOT_FOUND            ResourceInfo(resource_type=kind, name=ident)
AlreadyExists       ALREADY_EXISTS       ErrorInfo(ALREADY_EXISTS, metadata index)
PermissionDenied    PERMISSION_DENIED    ErrorInfo(PERMISSION_DENIED)
OutOfRange          OUT_OF_RANGE         ErrorInfo(OUT_OF_RANGE)
Conflict            ABORTED              ErrorInfo(CONFLICT) + RetryInfo
Unavailable         UNAVAILABLE          ErrorInfo(UNAVAILABLE) + RetryInfo
Corrupted           DATA_LOSS            ErrorInfo(LOG_ALTERED, metadata position)
other DomainError   FAILED_PRECONDITION  ErrorInfo(DOMAIN_RULE)
(auth interceptor)  UNAUTHENTICATED      ErrorInfo(reason given by the interceptor)
==================  ===================  =============================================

A retryable answer (ABORTED, UNAVAILABLE) also carries ``grpc-retry-pushback-ms``:
gRPC's own client retries (the ``retryPolicy`` of ``ledger.client``) wait exactly
that long, which is never less than the ``RetryInfo`` delay (``retry_delay``).

A database condition is answered as the retryable error it stands for
(ledger.adapters.db_errors), a value out of range as INVALID_ARGUMENT and
anything else as INTERNAL (``status_for_exception``). The guard interceptor
(ledger.grpc.guard) applies this to every call, so no servicer can forget it;
clients (CLI, ``ledger.client``) read the details back with
``ledger.client.errors.decode_error``.
"""

from __future__ import annotations

import random
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ledger.adapters.db_errors import database_error
from ledger.domain.errors import (
    AlreadyExists,
    Conflict,
    Corrupted,
    DomainError,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    TimelineViolation,
    Unavailable,
)

DOMAIN = "sla-ledger"

def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _error_info(reason: str, metadata: Mapping[str, str] | None = None) -> any_pb2.Any:
    return _pack(
        error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata or {}))
    )


def _retry_info(seconds: float) -> any_pb2.Any:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(int(seconds * 1e9), 0))
    return _pack(error_details_pb2.RetryInfo(retry_delay=delay))


def _index_metadata(index: int | None) -> dict[str, str]:
    return {} if index is None else {"index": str(index)}


#: A status message longer than this is cut: it travels in a trailer, and a
#: client refuses trailers past its metadata limit (8 KiB by default).
MAX_MESSAGE_CHARS = 1024


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def rich_status(error: DomainError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for a domain error (the mapping table above)."""
    message = _cut(str(error))
    details: list[any_pb2.Any]
    if isinstance(error, InvalidArgument):
        code = code_pb2.INVALID_ARGUMENT
        details = [
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=_cut(error.field), description=_cut(error.message)
                        )
                    ]
                )
            )
        ]
    elif isinstance(error, TimelineViolation):
        code = code_pb2.FAILED_PRECONDITION
        details = [
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type="TIMELINE", subject=error.rule, description=_cut(error.message)
                        )
                    ]
                )
            ),
            _error_info("INVALID_TIMELINE", {"rule": error.rule, **_index_metadata(error.index)}),
        ]
    elif isinstance(error, NotFound):
        code = code_pb2.NOT_FOUND
        details = [
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=error.kind, resource_name=_cut(error.ident), description=message
                )
            )
        ]
    elif isinstance(error, AlreadyExists):
        code = code_pb2.ALREADY_EXISTS
        details = [_error_info("ALREADY_EXISTS", _index_metadata(error.index))]
    elif isinstance(error, PermissionDenied):
        code = code_pb2.PERMISSION_DENIED
        details = [_error_info("PERMISSION_DENIED")]
    elif isinstance(error, OutOfRange):
        code = code_pb2.OUT_OF_RANGE
        details = [_error_info("OUT_OF_RANGE")]
    elif isinstance(error, Conflict):
        code = code_pb2.ABORTED
        details = [
            _error_info("CONFLICT"),
            _retry_info(error.retry_after),
        ]
    elif isinstance(error, Corrupted):
        code = code_pb2.DATA_LOSS
        details = [_error_info("LOG_ALTERED", {"position": str(error.position)})]
    elif isinstance(error, Unavailable):
        code = code_pb2.UNAVAILABLE
        details = [
            _error_info("UNAVAILABLE"),
            _retry_info(error.retry_after),
        ]
    else:
        code = code_pb2.FAILED_PRECONDITION
        details = [_error_info("DOMAIN_RULE")]
    return status_pb2.Status(code=code, message=message, details=details)


def status_for(error: DomainError) -> grpc.Status:
    """The ``grpc.Status`` (code, message, details trailer) for a domain error."""
    return rpc_status.to_status(rich_status(error))


def unauthenticated_status(message: str, reason: str = "UNAUTHENTICATED") -> grpc.Status:
    """UNAUTHENTICATED with an ErrorInfo; ``message`` must never contain a credential."""
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.UNAUTHENTICATED, message=message, details=[_error_info(reason)]
        )
    )


def status_for_exception(exc: BaseException, request_id: str) -> status_pb2.Status:
    """The status for anything a servicer raised (never UNKNOWN, no class names):
    a domain error as in the table above; a database condition as the retryable
    error it stands for (ledger.adapters.db_errors); a value out of range as
    INVALID_ARGUMENT; anything else INTERNAL, naming the request's id."""
    if isinstance(exc, DomainError):
        return rich_status(exc)
    retryable = database_error(exc)
    if retryable is not None:
        return rich_status(retryable)
    if isinstance(exc, OverflowError | ValueError | UnicodeError | RecursionError):
        return rich_status(InvalidArgument("request", "a value is out of the range the ledger computes"))
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error (request id {request_id})")


#: The first retry's largest wait on top of the RetryInfo delay, and the most
#: any one wait grows to (seconds).
RETRY_BACKOFF = 0.2
MAX_BACKOFF = 5.0
PUSHBACK_KEY = "grpc-retry-pushback-ms"
#: Set by gRPC's client on a retried attempt: how many came before it.
PREVIOUS_ATTEMPTS_KEY = "grpc-previous-rpc-attempts"


def retry_delay(asked: float, attempt: int, backoff: float = RETRY_BACKOFF,
                rand: Callable[[], float] = random.random) -> float:
    """Seconds a client waits before attempt ``attempt + 1``: the delay the
    condition asked for plus exponential backoff with full jitter, so clients
    that failed together do not all come back at the same instant."""
    ceiling = min(backoff * 2.0 ** (attempt - 1), MAX_BACKOFF)
    return asked + ceiling * rand()


# grpc.Status is an abstract class with three attributes (as grpc_status builds it).
class _Status(namedtuple("_Status", ("code", "details", "trailing_metadata")),
              grpc.Status):  # type: ignore[misc]
    pass


def attempt_of(metadata: Any) -> int:
    """Which attempt of the caller's call this is (1 for the first)."""
    for key, value in metadata or ():
        if key == PREVIOUS_ATTEMPTS_KEY and str(value).isdigit():
            return int(value) + 1
    return 1


def with_pushback(status: status_pb2.Status, attempt: int) -> grpc.Status:
    """The ``grpc.Status`` to abort with; a status with a ``RetryInfo`` also
    tells gRPC's retrying client when to try again (``grpc-retry-pushback-ms``)."""
    answer = rpc_status.to_status(status)
    for packed in status.details:
        if packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            packed.Unpack(info)
            asked = info.retry_delay.ToTimedelta().total_seconds()
            milliseconds = max(round(retry_delay(asked, attempt) * 1000), 1)
            return _Status(answer.code, answer.details,
                           (*answer.trailing_metadata, (PUSHBACK_KEY, str(milliseconds))))
    return answer
