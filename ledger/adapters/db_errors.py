"""Database conditions as retryable domain errors.

A caller cannot act on "UNKNOWN: Unexpected ConnectionUnavailableError"; it can
act on "try again in 100 ms". Every condition here leaves nothing stored (the
transaction that met it was rolled back), so a retry with the same event ids
is safe:

=====================================  ===========  =========================
condition                              error        status (ledger.grpc.errors)
=====================================  ===========  =========================
lock wait timed out, deadlock,         Conflict     ABORTED + RetryInfo
serialization failure, SQLite busy
no pooled connection in time,          Unavailable  UNAVAILABLE + RetryInfo
connection lost, server shutting down
=====================================  ===========  =========================

Anything else (a bug, a schema problem) is not classified: it must not be
retried blindly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg
import psycopg.errors
import psycopg_pool
from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    InterfaceError,
    OperationalError,
)

from ledger.domain.errors import Conflict, DomainError, Unavailable

#: Seconds a client should wait before retrying, per condition.
CONTENTION_RETRY = 0.05
BUSY_RETRY = 0.2
OUTAGE_RETRY = 1.0

_CONTENTION = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.QueryCanceled,  # lock_timeout / statement_timeout
)
_OUTAGE = (
    psycopg.errors.AdminShutdown,
    psycopg.errors.CannotConnectNow,
    psycopg.errors.ConnectionException,
    psycopg.errors.TooManyConnections,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def database_error(exc: BaseException) -> DomainError | None:  # noqa: C901, PLR0911  an ordered classification: the first matching cause decides
    """The retryable error a database exception stands for, or None."""
    for cause in _chain(exc):
        if isinstance(cause, DomainError):
            return None
        if isinstance(cause, _CONTENTION):
            return Conflict("the database is busy with concurrent writes; retry",
                            CONTENTION_RETRY)
        if isinstance(cause, _OUTAGE):
            return Unavailable("the database is unavailable; retry", OUTAGE_RETRY)
        if isinstance(cause, sqlite3.OperationalError):
            text = str(cause).lower()
            if "locked" in text or "busy" in text:
                return Conflict("the database is locked by another writer; retry",
                                CONTENTION_RETRY)
            return Unavailable("the database cannot be used right now; retry", OUTAGE_RETRY)
        if isinstance(cause, (ConnectionUnavailableError, psycopg_pool.PoolTimeout)):
            return Unavailable("the server is busy (no database connection free); retry",
                               BUSY_RETRY)
        if isinstance(cause, ConnectionPoolClosedError):
            return Unavailable("the server is shutting down; retry", OUTAGE_RETRY)
        if isinstance(cause, psycopg.OperationalError):
            return Unavailable("the database connection failed; retry", OUTAGE_RETRY)
    # The library wraps psycopg errors in its own classes with the message
    # only, so an unclassified wrapper of a connection problem is an outage.
    if isinstance(exc, (OperationalError, InterfaceError)):
        text = str(exc).lower()
        if "lock" in text or "deadlock" in text or "could not serialize" in text:
            return Conflict("the database is busy with concurrent writes; retry",
                            CONTENTION_RETRY)
        return Unavailable("the database connection failed; retry", OUTAGE_RETRY)
    return None
