"""The SLA read models: a rebuild equals the incrementally maintained state,
and reports answered from them equal reports replayed from the events, on
SQLite and PostgreSQL, after random histories with late events,
retractions, voids and an amendment."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from ledger.adapters.eventstore import EventStore, open_store
from ledger.application.ledger_service import LedgerService
from ledger.application.reports import Cut, ReportService
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.agreements import AgreementHistory
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import DomainError, NotFound
from ledger.domain.instants import parse_instant
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.terms_parsing import parse_terms
from projections import sla_tally
from projections.runner import ProjectionRunner
from projections.sla_projection import SlaProjection
from projections.sla_read_model import SlaReadModel
from tests.support.histories import AGREEMENT, dump, load, register_herts, scenario
from tests.support.random_history import random_history


@pytest.fixture(autouse=True)
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tally checkpoints every few positions, so these short histories
    cross many of them (reads then start from a stored checkpoint)."""
    monkeypatch.setattr(sla_tally, "CHECKPOINT", 16)


INSTANTS = ("2026-10-01T12:00:00Z", "2026-10-16T09:30:00Z", "2026-11-05T00:00:00Z",
            "2026-10-25T13:37:00Z",
            "2027-01-10T00:00:00Z")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_rebuild_equals_live_and_reports_equal_replay(store: EventStore,
                                                      clock: Callable[[], int], seed: int) -> None:
    service = LedgerService(store, clock)
    register_herts(service)
    runner = ProjectionRunner(store, [SlaProjection(store, cache_size=8)], batch_size=5)
    assert load(service, runner, seed, incidents=40) > 150
    assert runner.position("sla") == store.max_position()

    live = dump(runner)
    assert len(live["sla_incident"]) >= 35
    assert any(row[5] is None for row in live["sla_clock"])  # some clocks still run
    assert runner.rebuild("sla") == store.max_position()
    assert dump(runner) == live
    # A fresh projection object (empty caches) rebuilds to the same rows.
    fresh = ProjectionRunner(store, [SlaProjection(store)], batch_size=1000)
    fresh.rebuild("sla")
    assert dump(fresh) == live

    from_model = ReportService(store, clock, SlaReadModel(store))
    replayed = ReportService(store, clock)
    for period in ("2026-09", "2026-10", "2026-11"):
        for instant in INSTANTS:
            t = parse_instant(instant)
            for ids in (True, False):
                expected = period_report_dict(replayed.period_report(LOCAL_ADMIN, AGREEMENT, period, t, None, ids))
                assert period_report_dict(from_model.period_report(LOCAL_ADMIN, AGREEMENT, period, t, None, ids)) \
                    == expected, (period, instant, ids)
    for incident in sorted(str(r[0]) for r in live["sla_incident"])[:15]:
        for instant in INSTANTS[1:3]:
            t = parse_instant(instant)
            assert from_model.incident_view(LOCAL_ADMIN, incident, t, None) == \
                replayed.incident_view(LOCAL_ADMIN, incident, t, None)
    t = parse_instant(INSTANTS[1])
    assert from_model.clocks_at_risk(LOCAL_ADMIN, AGREEMENT, t) == \
        replayed.clocks_at_risk(LOCAL_ADMIN, AGREEMENT, t)


def test_model_answers_at_its_own_position(store: EventStore, clock: Callable[[], int]) -> None:
    """Without read-your-writes waiting, a lagging model answers for the
    position it holds and says so; an explicit cut always replays."""
    service = LedgerService(store, clock)
    register_herts(service)
    runner = ProjectionRunner(store, [SlaProjection(store)])
    load(service, runner, seed=5, incidents=8)
    held = runner.position("sla")
    service.append(LOCAL_ADMIN, [event_from_dict({
        "event_id": "late-open", "incident_id": "LATE-1", "type": "opened",
        "occurred_at": "2026-10-20T10:00:00Z", "actor": "herts", "agreement": AGREEMENT,
        "service": "desktop", "priority": "P2", "custody": "hp"})])
    reports = ReportService(store, clock, SlaReadModel(store))
    t = parse_instant("2026-11-05T00:00:00Z")
    report = period_report_dict(reports.period_report(LOCAL_ADMIN, AGREEMENT, "2026-10", t, None))
    assert report["recorded_position"] == held
    cut = period_report_dict(reports.period_report(LOCAL_ADMIN, AGREEMENT, "2026-10", t, Cut(position=held + 1)))
    assert cut["recorded_position"] == held + 1
    assert cut["as_recorded_at"] == held + 1
    with pytest.raises(NotFound):
        reports.incident_view(LOCAL_ADMIN, "LATE-1", t, None)
    runner.run_once()
    assert reports.incident_view(LOCAL_ADMIN, "LATE-1", t, None).exists is True


def test_unknown_agreement_is_not_found_from_the_model(store: EventStore,
                                                       clock: Callable[[], int]) -> None:
    register_herts(LedgerService(store, clock))
    ProjectionRunner(store, [SlaProjection(store)]).run_once()
    reports = ReportService(store, clock, SlaReadModel(store))
    with pytest.raises(NotFound, match="nope"):
        period_report_dict(reports.period_report(LOCAL_ADMIN, "nope", "2026-10", None, None))


class FailingOnce(SlaProjection):
    """Fails, once, the first batch with a handoff of an incident it has
    seen before, after doing its work (a connection lost before commit).
    A replayed handoff is not idempotent, so a stale cache would show."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self.seen: set[str] = set()
        self.failed = False

    def apply(self, tx: Any, events: Any) -> None:
        super().apply(tx, events)
        handoff = any(e.type == "handed_off" and e.incident_id in self.seen for e in events)
        self.seen |= {e.incident_id for e in events}
        if handoff and not self.failed:
            self.failed = True
            raise ConnectionError("connection lost before commit")


@pytest.mark.parametrize("seed", [31, 34])
def test_a_rolled_back_batch_leaves_no_trace(store: EventStore, clock: Callable[[], int],
                                             seed: int) -> None:
    service = LedgerService(store, clock)
    register_herts(service)
    projection = FailingOnce(store)
    runner = ProjectionRunner(store, [projection], batch_size=9)
    failed = 0
    for batch in random_history(seed, 20):
        with contextlib.suppress(DomainError):
            service.append(LOCAL_ADMIN, [event_from_dict(e) for e in batch])
        try:
            runner.run_once()
        except ConnectionError:
            failed += 1
    runner.run_once()
    assert failed == 1
    assert runner.position("sla") == store.max_position()
    live = dump(runner)
    runner.rebuild("sla")
    assert dump(runner) == live


def test_two_processes_sharing_the_database_apply_each_batch_once(
        store: EventStore, database_url: str, clock: Callable[[], int]) -> None:
    """Two servers on one database each run the projections: each batch is
    applied by whichever locks the tracking row first, the other adopts
    its position, and the result equals a rebuild."""
    other_store = open_store(database_url)
    try:
        service = LedgerService(store, clock)
        register_herts(service)
        first = ProjectionRunner(store, [SlaProjection(store)], batch_size=4)
        second = ProjectionRunner(other_store, [SlaProjection(other_store)], batch_size=4)
        for index, batch in enumerate(random_history(41, 15)):
            with contextlib.suppress(DomainError):
                service.append(LOCAL_ADMIN, [event_from_dict(e) for e in batch])
            (first if index % 3 else second).run_once()
        first.run_once()
        second.run_once()
        assert first.position("sla") == second.position("sla") == store.max_position()
        live = dump(first)
        first.rebuild("sla")
        assert dump(first) == live
    finally:
        other_store.close()


def test_a_time_zone_change_falls_back_to_replay(store: EventStore,
                                                 clock: Callable[[], int]) -> None:
    """Periods follow the zone of their terms; the per-period tallies assume
    one zone per agreement, so such an agreement is answered by replay, and
    the answer is the same."""
    service = LedgerService(store, clock)
    register_herts(service)
    raw = {**scenario()["agreements"][0], "timezone": "America/New_York"}
    service.amend_agreement(LOCAL_ADMIN, "amend:zone", AGREEMENT,
                            parse_instant("2026-10-20T00:00:00Z"), parse_terms(raw))
    runner = ProjectionRunner(store, [SlaProjection(store)])
    load(service, runner, seed=51, incidents=10)
    model = SlaReadModel(store)
    t = parse_instant("2026-11-05T00:00:00Z")

    def anyone(history: AgreementHistory | None) -> AgreementHistory:
        assert history is not None
        return history

    assert model.period_report(AGREEMENT, "2026-10", t, keep_ids=True, authorize=anyone) is None
    from_model = ReportService(store, clock, model)
    replayed = ReportService(store, clock)
    assert period_report_dict(from_model.period_report(LOCAL_ADMIN, AGREEMENT, "2026-10", t, None)) == \
        period_report_dict(replayed.period_report(LOCAL_ADMIN, AGREEMENT, "2026-10", t, None))
