"""LedgerService under real concurrent writers on SQLite and PostgreSQL
(`database_url`): two writers racing on one incident stream, and a stale
cached stream version retried with fresh state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ledger.adapters.eventstore import EventStore as SqlEventStore
from ledger.adapters.eventstore import open_store
from ledger.application.ledger_service import LedgerService
from ledger.application.ports import VersionConflict
from ledger.domain import events as ev
from ledger.domain.access import LOCAL_ADMIN, Principal
from ledger.domain.errors import (
    Conflict,
    DomainError,
    TimelineViolation,
)
from ledger.domain.events import AppendResult
from ledger.domain.instants import parse_instant
from ledger.domain.streams import incident_stream
from ledger.domain.validation import check_incident_timeline
from tests.support.histories import (
    AGREEMENT,
    assert_gap_free,
    incident_event,
    opened,
    register_herts,
)

MINUTE = 60_000_000


@dataclass
class GatedStore:
    """An EventStore whose next append, per thread, first waits for the other
    writer at a barrier: both writes are prepared against the same stream
    version, so one of them must hit a real VersionConflict."""

    inner: SqlEventStore
    barrier: threading.Barrier
    conflicts: list[str] = field(default_factory=list)
    local: threading.local = field(default_factory=threading.local)

    def gate_next_append(self) -> None:
        self.local.gated = True

    def append(self, writes: Any, recorded_at: int, expect: Any = None) -> list[int]:
        if getattr(self.local, "gated", False):
            self.local.gated = False
            self.barrier.wait(timeout=60)
        try:
            return self.inner.append(writes, recorded_at, expect)
        except VersionConflict:
            self.conflicts.append(threading.current_thread().name)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def append_retrying(service: LedgerService, principal: Principal,
                    events: list[ev.LedgerEvent]) -> list[AppendResult]:
    """What a client does on Conflict (ABORTED): retry the same batch."""
    for _ in range(50):
        try:
            return service.append(principal, events)
        except Conflict:
            continue
    raise AssertionError("still conflicting after 50 retries")


def test_concurrent_writers_to_one_incident(database_url: str, clock: Callable[[], int]) -> None:  # noqa: PLR0915  one concurrency scenario told in order
    setup = open_store(database_url)
    try:
        admin = LedgerService(setup, clock)
        register_herts(admin)
        admin.append(LOCAL_ADMIN, [opened("open", "INC-X", at="2026-10-10T00:00:00Z")])
    finally:
        setup.close()

    barrier = threading.Barrier(2)
    stores = [GatedStore(open_store(database_url), barrier) for _ in range(2)]
    services = [LedgerService(s, clock) for s in stores]
    rounds = 25
    base = parse_instant("2026-10-10T00:00:00Z")

    def at(minute: int) -> str:
        from ledger.domain.instants import format_instant

        return format_instant(base + minute * MINUTE)

    # Writer 0: responses by the provider holding custody. Writer 1: the
    # customer pausing and resuming the clock. Each series is valid however
    # the two interleave; the final resolved is contested by both.
    series: list[list[ev.LedgerEvent]] = [
        [incident_event(f"resp-{i}", "INC-X", "responded", at(10 + 3 * i), "hp")
         for i in range(rounds)],
        [e for i in range(rounds) for e in (
            incident_event(f"pause-{i}", "INC-X", "clock_paused", at(11 + 3 * i), "herts"),
            incident_event(f"resume-{i}", "INC-X", "clock_resumed", at(12 + 3 * i), "herts"),
        )],
    ]
    finals = [incident_event(f"resolved-{n}", "INC-X", "resolved", at(1000 + n), "hp")
              for n in range(2)]
    results: list[dict[str, int]] = [{}, {}]
    final_outcome: list[AppendResult | DomainError | None] = [None, None]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            service, store = services[n], stores[n]
            service.streams.get(f"incident:{AGREEMENT}/INC-X")  # both writers start from version 1
            store.gate_next_append()
            for event in series[n]:
                (result,) = append_retrying(service, LOCAL_ADMIN, [event])
                assert not result.duplicate
                results[n][result.event_id] = result.position
            barrier.wait(timeout=60)  # both series are in
            service.streams.get(f"incident:{AGREEMENT}/INC-X")
            store.gate_next_append()
            try:
                (final_outcome[n],) = append_retrying(service, LOCAL_ADMIN, [finals[n]])
            except DomainError as exc:
                final_outcome[n] = exc
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(n,), name=f"writer-{n}") for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not any(t.is_alive() for t in threads), "writers did not finish"
        assert not errors, errors
        # The gates forced at least one real conflict per phase.
        assert len(stores[0].conflicts) + len(stores[1].conflicts) >= 2

        winners = [o for o in final_outcome if isinstance(o, AppendResult)]
        losers = [o for o in final_outcome if isinstance(o, DomainError)]
        assert len(winners) == 1 and len(losers) == 1, final_outcome
        assert isinstance(losers[0], TimelineViolation)
        assert losers[0].rule == "already_resolved"

        check = open_store(database_url)
        try:
            log = assert_gap_free(check)
            stream = check.load_stream(incident_stream(AGREEMENT, "INC-X"))
            by_id = {e.event_id: e.position for e in stream}
            # No event lost: every acknowledged position holds that event.
            acknowledged = {**results[0], **results[1], winners[0].event_id: winners[0].position}
            assert len(acknowledged) == 3 * rounds + 1
            assert {k: by_id[k] for k in acknowledged} == acknowledged
            assert set(by_id) == {"open", *acknowledged}
            assert len(log) == 1 + 1 + 3 * rounds + 1  # agreement, opened, series, resolved
            reader = LedgerService(check, clock)
            check_incident_timeline(reader.agreement(AGREEMENT), stream)
        finally:
            check.close()
    finally:
        for s in stores:
            s.inner.close()


def test_stale_cache_conflict_is_retried_with_fresh_state(database_url: str,
                                                         clock: Callable[[], int]) -> None:
    """Deterministic: writer A's cached stream is stale; its append conflicts
    for real, reloads, and is judged against what B stored."""
    a_store, b_store = open_store(database_url), open_store(database_url)
    try:
        counting = GatedStore(a_store, threading.Barrier(1))
        a = LedgerService(counting, clock)
        b = LedgerService(b_store, clock)
        register_herts(a)
        a.append(LOCAL_ADMIN, [opened("open", "INC-S")])
        assert len(a.streams.get(f"incident:{AGREEMENT}/INC-S")) == 1  # cached at version 1
        b.append(LOCAL_ADMIN, [incident_event("p-b", "INC-S", "clock_paused",
                                              "2026-10-10T10:00:00Z", "herts")])
        # A's valid-looking (against its stale cache) pause is refused after the reload.
        with pytest.raises(TimelineViolation) as info:
            a.append(LOCAL_ADMIN, [incident_event("p-a", "INC-S", "clock_paused",
                                                  "2026-10-10T11:00:00Z", "herts")])
        assert info.value.rule == "already_paused"
        assert counting.conflicts == ["MainThread"]
        (resumed,) = a.append(LOCAL_ADMIN, [incident_event("r-a", "INC-S", "clock_resumed",
                                                          "2026-10-10T11:00:00Z", "herts")])
        assert resumed.position == 4
        assert [e.event_id for e in b.store.load_stream(incident_stream(AGREEMENT, "INC-S"))] == [
            "open", "p-b", "r-a"]
        assert_gap_free(b_store)
    finally:
        a_store.close()
        b_store.close()
