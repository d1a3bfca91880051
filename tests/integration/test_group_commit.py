"""Group commit contract, on SQLite and PostgreSQL: calls queued together are
checked in arrival order against what the earlier calls leave behind, fail
alone, stay all-or-nothing, share one transaction, and are idempotent across
groups and restarts. A database failure mid-group fails every member with a
retryable status and stores nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from ledger.adapters.eventstore import EventStore, open_store
from ledger.application.group_commit import GroupCommitter
from ledger.application.ledger_service import LedgerService
from ledger.domain import events as ev
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.errors import AlreadyExists, Conflict, DomainError, TimelineViolation
from ledger.domain.events import AppendResult
from tests.support.histories import assert_gap_free, incident_event, opened, register_herts


@pytest.fixture
def service(store: EventStore, clock: Callable[[], int]) -> LedgerService:
    svc = LedgerService(store, clock)
    register_herts(svc)
    return svc


@contextmanager
def one_group(service: LedgerService) -> Iterator[Callable[[Sequence[ev.LedgerEvent]], Future[Any]]]:
    """Calls submitted inside the block are queued while the writer is held,
    so they are taken as one group when the block ends."""
    committer = GroupCommitter(service)
    gate = threading.Event()
    held = committer.submit_write(gate.wait)
    submitted: list[Future[Any]] = []

    def submit(events: Sequence[ev.LedgerEvent]) -> Future[Any]:
        submitted.append(committer.submit(LOCAL_ADMIN, events))
        return submitted[-1]

    try:
        yield submit
    finally:
        gate.set()
        held.result(30)
        wait(submitted, 30)
        committer.close()


def responded(event_id: str, incident: str, at: str = "2026-10-10T09:05:00Z") -> ev.LedgerEvent:
    return incident_event(event_id, incident, "responded", at, "hp")


def resumed(event_id: str, incident: str, at: str = "2026-10-10T09:06:00Z") -> ev.LedgerEvent:
    """Refused: the clock is not paused."""
    return incident_event(event_id, incident, "clock_resumed", at, "herts")


def outcome(future: Future[Any]) -> list[AppendResult] | DomainError:
    try:
        return future.result(30)  # type: ignore[no-any-return]
    except DomainError as exc:
        return exc


def test_members_see_earlier_members_and_fail_alone(service: LedgerService) -> None:
    with one_group(service) as submit:
        first = submit([opened("o-1", "INC-1")])
        second = submit([responded("r-1", "INC-1")])  # needs the open of the call before
        bad = submit([resumed("r-2", "INC-1")])
        third = submit([opened("o-2", "INC-2")])
    assert [r.position for r in outcome(first)] == [2]  # type: ignore[union-attr]
    assert [r.position for r in outcome(second)] == [3]  # type: ignore[union-attr]
    refused = outcome(bad)
    assert isinstance(refused, TimelineViolation)
    assert [r.position for r in outcome(third)] == [4]  # type: ignore[union-attr]
    log = assert_gap_free(service.store)
    assert [e.event_id for e in log] == ["register:herts-converged", "o-1", "r-1", "o-2"]


def test_a_batch_is_all_or_nothing_inside_a_group(service: LedgerService) -> None:
    with one_group(service) as submit:
        before = submit([opened("o-1", "INC-1")])
        batch = submit([opened("o-2", "INC-2"), responded("r-2", "INC-2"),
                        resumed("r-2b", "INC-2")])  # the last one breaks a rule
        after = submit([opened("o-3", "INC-3"), responded("r-3", "INC-3")])
    assert not isinstance(outcome(before), DomainError)
    refused = outcome(batch)
    assert isinstance(refused, TimelineViolation) and refused.index == 2
    assert [r.position for r in outcome(after)] == [3, 4]  # type: ignore[union-attr]
    assert [e.event_id for e in assert_gap_free(service.store)][1:] == ["o-1", "o-3", "r-3"]


def test_idempotent_across_groups_within_a_group_and_across_a_restart(
        service: LedgerService, database_url: str, clock: Callable[[], int]) -> None:
    with one_group(service) as submit:
        original = submit([opened("o-1", "INC-1"), responded("r-1", "INC-1")])
        again = submit([responded("r-1", "INC-1")])  # the same event, later in the same group
        clash = submit([incident_event("r-1", "INC-1", "responded", "2026-10-10T09:09:00Z",
                                       "hp")])
    stored = outcome(original)
    assert [r.duplicate for r in stored] == [False, False]  # type: ignore[union-attr]
    assert outcome(again) == [AppendResult("r-1", 3, True)]
    assert isinstance(outcome(clash), AlreadyExists)
    with one_group(service) as submit:
        later = submit([opened("o-1", "INC-1"), responded("r-1", "INC-1")])
    assert outcome(later) == [AppendResult("o-1", 2, True), AppendResult("r-1", 3, True)]

    reopened = open_store(database_url)
    try:
        fresh = LedgerService(reopened, clock)
        with one_group(fresh) as submit:
            restarted = submit([responded("r-1", "INC-1"), opened("o-2", "INC-2")])
        assert outcome(restarted) == [AppendResult("r-1", 3, True), AppendResult("o-2", 4, False)]
        assert len(assert_gap_free(reopened)) == 4
    finally:
        reopened.close()


def test_a_new_incident_costs_no_read(service: LedgerService) -> None:
    service.append(LOCAL_ADMIN, [opened("o-0", "INC-0")])  # the agreement is cached now
    loads: list[Sequence[str]] = []
    real = service.store.load_streams

    def counting(names: Sequence[str]) -> Any:
        loads.append(names)
        return real(names)

    service.store.load_streams = counting  # type: ignore[method-assign]
    with one_group(service) as submit:
        calls = [submit([opened(f"o-{n}", f"INC-{n}")]) for n in range(1, 6)]
    assert all(not isinstance(outcome(c), DomainError) for c in calls)
    assert loads == []


def test_another_writers_incident_is_found_by_the_insert(
        service: LedgerService, database_url: str, clock: Callable[[], int]) -> None:
    """An incident opened by another process is not in this one's cache: the
    open presumed new collides on the stream's first version and is re-checked."""
    other_store = open_store(database_url)
    try:
        LedgerService(other_store, clock).append(LOCAL_ADMIN, [opened("theirs", "INC-1")])
    finally:
        other_store.close()
    with pytest.raises(TimelineViolation) as raised:
        service.append(LOCAL_ADMIN, [opened("mine", "INC-1")])
    assert raised.value.rule == "already_opened"
    (result,) = service.append(LOCAL_ADMIN, [responded("r-1", "INC-1")])
    assert result.position == 3


def _fail_mid_transaction(store: EventStore) -> None:
    """Make the next group transaction fail after its rows went in, with a
    lock timeout (the database's own error)."""
    recorder: Any = store.recorder
    if store.is_postgres:
        schema = recorder.datastore.schema
        with recorder.datastore.get_connection() as conn:
            conn.execute(
                f'CREATE FUNCTION "{schema}".fail_notify(text) RETURNS void '
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'lock timeout' "
                "USING ERRCODE = '55P03'; END $$")
        recorder.notify_sql = f'SELECT "{schema}".fail_notify(%s)'
        return
    import sqlite3

    real = recorder._write_group

    def failing(*args: Any) -> int:
        real(*args)
        raise sqlite3.OperationalError("database is locked")

    recorder._write_group = failing


def test_a_database_error_mid_group_fails_every_member_retryably(
        service: LedgerService, store: EventStore) -> None:
    service.append(LOCAL_ADMIN, [opened("o-0", "INC-0")])
    _fail_mid_transaction(store)  # the service's own store: the fixture built it on this one
    with one_group(service) as submit:
        calls = [submit([opened(f"o-{n}", f"INC-{n}")]) for n in range(1, 4)]
        invalid = submit([responded("r-x", "INC-404")])
    for call in calls:
        assert isinstance(outcome(call), Conflict)
    assert not isinstance(outcome(invalid), Conflict)  # refused on its own merits
    assert [e.event_id for e in assert_gap_free(service.store)] == [
        "register:herts-converged", "o-0"]


def test_every_member_gets_its_own_answer_when_the_database_is_gone(
        service: LedgerService, store: EventStore) -> None:
    recorder: Any = store.recorder  # the service's own store's recorder

    def gone(*_: Any) -> int:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    recorder.write_group = gone
    with one_group(service) as submit:
        calls = [submit([opened(f"o-{n}", f"INC-{n}")]) for n in range(3)]
    assert [type(outcome(c)).__name__ for c in calls] == ["Unavailable"] * 3
