"""Database conditions reach clients as ABORTED/UNAVAILABLE with a retry delay,
never UNKNOWN, and ledger.client (gRPC's retryPolicy, with the server's
pushback) retries them honouring that delay."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg.errors
import pytest
from eventsourcing.persistence import ConnectionUnavailableError, OperationalError

from ledger.adapters.db_errors import BUSY_RETRY, database_error
from ledger.client import LedgerClient
from ledger.client.errors import decode_error
from ledger.domain.errors import Conflict, InvalidArgument, Unavailable
from ledger.grpc.errors import PUSHBACK_KEY, retry_delay
from tests.support.histories import opened, register_herts_remotely
from tests.support.ledger_server import running_ledger


def _wrapped(cause: Exception) -> OperationalError:
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as exc:
        return exc


@pytest.mark.parametrize(("exc", "kind"), [
    (ConnectionUnavailableError("Timed out waiting for return of writer"), Unavailable),
    (sqlite3.OperationalError("database is locked"), Conflict),
    (sqlite3.OperationalError("disk I/O error"), Unavailable),
    (_wrapped(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")),
     Conflict),
    (_wrapped(psycopg.errors.SerializationFailure("could not serialize")), Conflict),
    (_wrapped(psycopg.errors.AdminShutdown("terminating connection")), Unavailable),
    (psycopg.OperationalError("server closed the connection unexpectedly"), Unavailable),
    (OperationalError("connection lost"), Unavailable),
])
def test_database_conditions_are_retryable(exc: Exception, kind: type) -> None:
    mapped = database_error(exc)
    assert isinstance(mapped, kind)
    assert isinstance(mapped, (Unavailable, Conflict)) and mapped.retry_after > 0


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("x"),
                                 InvalidArgument("f", "bad")])
def test_other_errors_are_not_classified(exc: Exception) -> None:
    assert database_error(exc) is None


def test_retry_delay_never_undercuts_the_server() -> None:
    # the pushback a retryable answer carries: RetryInfo's delay (here none) plus backoff
    assert retry_delay(0.0, 1, 0.2, rand=lambda: 0.0) == 0.0
    assert retry_delay(0.0, 3, 0.2, rand=lambda: 1.0) == pytest.approx(0.8)
    assert retry_delay(0.0, 30, 0.2, rand=lambda: 1.0) == pytest.approx(5.0)  # capped
    assert retry_delay(BUSY_RETRY, 1, 0.2, rand=lambda: 0.0) == BUSY_RETRY


def test_a_database_condition_is_answered_with_retry_info_and_retried(
        tmp_path: Path, clock: Callable[[], int]) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    with running_ledger(database, clock) as (ledger, target):
        with LedgerClient(target) as client:
            register_herts_remotely(client)
        recorder: Any = ledger.store.recorder
        real = recorder.write_group
        failures = [ConnectionUnavailableError("Timed out waiting for return of writer")] * 2
        attempts_at: list[float] = []

        def flaky(*args: Any) -> Any:
            attempts_at.append(time.monotonic())
            if failures:
                raise failures.pop()
            return real(*args)

        recorder.write_group = flaky
        with LedgerClient(target, attempts=1) as once, pytest.raises(grpc.RpcError) as raised:
            once.append([opened("e-1", "INC-1")])
        decoded = decode_error(raised.value)
        assert decoded["code"] == "UNAVAILABLE"
        assert decoded["retry_delay_seconds"] == pytest.approx(BUSY_RETRY)
        pushback = dict(raised.value.trailing_metadata() or ())[PUSHBACK_KEY]
        assert int(pushback) >= BUSY_RETRY * 1000

        attempts_at.clear()
        with LedgerClient(target) as client:
            (result,) = client.append([opened("e-1", "INC-1")])
        assert result.position == 2 and not result.duplicate
        waits = [later - earlier for earlier, later in itertools.pairwise(attempts_at)]
        assert len(waits) == 1 and waits[0] >= BUSY_RETRY
