"""The SLA read models as recorded at any position agree with the replay
(the reference): regression cases where an incident has no clock rows at
the model's position but had clocks at the evaluation instant, and a
property test over random histories and random knowledge cuts, on SQLite
and PostgreSQL."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ledger.adapters.eventstore import EventStore
from ledger.application.ledger_service import LedgerService
from ledger.application.reports import Cut, ReportService
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import DomainError
from ledger.domain.instants import parse_instant
from ledger.domain.sla.report_json import period_report_dict
from projections import sla_tally
from projections.runner import ProjectionRunner
from projections.sla_projection import SlaProjection
from projections.sla_read_model import SlaReadModel
from tests.support.histories import AGREEMENT, amend, register_herts
from tests.support.random_history import random_history


@pytest.fixture(autouse=True)
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sla_tally, "CHECKPOINT", 8)


def _event(n: str, kind: str, at: str, **fields: Any) -> Any:
    return event_from_dict({"event_id": f"{n}-{kind}-{at}", "incident_id": n, "type": kind,
                            "occurred_at": at, "actor": "herts"} | fields)


def _opened(n: str, at: str, priority: str = "P1") -> Any:
    return _event(n, "opened", at, agreement=AGREEMENT, service="desktop",
                  priority=priority, custody="bt")


def _reports(store: EventStore, clock: Callable[[], int]) -> tuple[ReportService, ReportService]:
    runner = ProjectionRunner(store, [SlaProjection(store)])
    runner.run_once()
    return ReportService(store, clock, SlaReadModel(store)), ReportService(store, clock)


def _assert_agree(model: ReportService, replay: ReportService, t: str,
                  cuts: list[int | None]) -> None:
    for cut in cuts:
        position = None if cut is None else Cut(position=cut)
        for ids in (True, False):
            expected = period_report_dict(replay.period_report(LOCAL_ADMIN, AGREEMENT, "2026-10", parse_instant(t),
                                            position, ids))
            assert period_report_dict(model.period_report(LOCAL_ADMIN, AGREEMENT, "2026-10", parse_instant(t),
                                       position, ids)) == expected, (cut, ids)


def test_priority_changed_after_t_to_one_without_levels(store: EventStore,
                                                        clock: Callable[[], int]) -> None:
    """P1 at T, P4 (no levels in the worked agreement) after T: at T the
    incident still counts for the P1 levels (issue 11, item 1)."""
    service = LedgerService(store, clock)
    register_herts(service)
    service.append(LOCAL_ADMIN, [
        _opened("MISSED", "2026-10-05T09:00:00Z"),
        _opened("PENDING", "2026-10-05T11:50:00Z"),
        _opened("LATE", "2026-10-05T09:00:00Z"),
    ])
    service.append(LOCAL_ADMIN, [
        _event("MISSED", "priority_changed", "2026-10-05T13:00:00Z", priority="P4"),
        _event("PENDING", "priority_changed", "2026-10-05T13:00:00Z", priority="P4"),
        _event("LATE", "priority_changed", "2026-10-05T13:00:00Z", priority="P4"),
    ])
    # A late response, recorded after the priority change but before T.
    service.append(LOCAL_ADMIN, [_event("LATE", "responded", "2026-10-05T09:10:00Z", actor="bt")])
    model, replay = _reports(store, clock)
    t = "2026-10-05T12:00:00Z"
    report = period_report_dict(replay.period_report(LOCAL_ADMIN, AGREEMENT, "2026-10", parse_instant(t), None))
    response = next(sl for sl in report["service_levels"] if sl["id"] == "p1-response")
    assert response["incidents"]["missed"] == ["MISSED"]
    assert response["incidents"]["pending"] == ["PENDING"]
    _assert_agree(model, replay, t, [None, *range(1, store.max_position() + 1)])
    # After the change, no level of P4 applies: nothing counts.
    _assert_agree(model, replay, "2026-10-06T00:00:00Z", [None, store.max_position() - 1])


def test_retraction_that_removes_the_last_clock(store: EventStore,
                                                clock: Callable[[], int]) -> None:
    """A priority change before T, retracted later: the clocks it removed
    come back at every T, and a cut before the retraction still has none."""
    service = LedgerService(store, clock)
    register_herts(service)
    service.append(LOCAL_ADMIN, [_opened("R", "2026-10-07T09:00:00Z", "P2")])
    change = _event("R", "priority_changed", "2026-10-07T09:30:00Z", priority="P4")
    service.append(LOCAL_ADMIN, [change])
    service.append(LOCAL_ADMIN, [_event("R", "responded", "2026-10-07T10:30:00Z", actor="bt")])
    service.append(LOCAL_ADMIN, [event_from_dict({
        "event_id": "R-retract", "incident_id": "R", "type": "retracted", "actor": "herts",
        "target_event_id": change.event_id, "occurred_at": "2026-10-07T11:00:00Z"})])
    model, replay = _reports(store, clock)
    for t in ("2026-10-07T09:45:00Z", "2026-10-07T10:45:00Z", "2026-10-08T00:00:00Z"):
        _assert_agree(model, replay, t, [None, *range(1, store.max_position() + 1)])


def _own(event: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The event with ids of its own (examples share one store)."""
    out = dict(event)
    for key in ("event_id", "incident_id", "target_event_id"):
        if key in out:
            out[key] = f"{prefix}{out[key]}"
    return out


def _load(service: LedgerService, runner: ProjectionRunner, seed: int, incidents: int) -> None:
    batches = random_history(seed, incidents)
    prefix = f"S{seed}-{random.getrandbits(32):x}-"
    for index, batch in enumerate(batches):
        events = [event_from_dict(_own(e, prefix)) for e in batch]
        try:
            service.append(LOCAL_ADMIN, events)
        except DomainError:
            for event in events:
                with contextlib.suppress(DomainError):
                    service.append(LOCAL_ADMIN, [event])
        if index == len(batches) // 2:
            with contextlib.suppress(DomainError):
                amend(service)
        if index % 4 == 0:
            runner.run_once()
    runner.run_once()


@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), data=st.data())
def test_reports_at_random_cuts_equal_the_replay(store: EventStore, clock: Callable[[], int],
                                                 seed: int, data: st.DataObject) -> None:
    """Random histories (late events, retractions, voids, priority changes,
    an amendment), random knowledge cuts and evaluation instants: the read
    model's answer is the replay's, with and without incident ids. The
    store is shared between examples: each example adds its own history, and
    every cut of the whole log is fair game."""
    service = LedgerService(store, clock)
    with contextlib.suppress(DomainError):
        register_herts(service)
    runner = ProjectionRunner(store, [SlaProjection(store)], batch_size=data.draw(
        st.sampled_from([3, 50, 1000]), label="batch"))
    _load(service, runner, seed, incidents=12)
    model, replay = ReportService(store, clock, SlaReadModel(store)), ReportService(store, clock)
    last = store.max_position()
    for _ in range(4):
        cut = 2 + (last - 2) * data.draw(st.integers(0, 1000), label="cut") // 1000
        t = parse_instant("2026-09-28T08:00:00Z") + data.draw(
            st.integers(0, 45 * 24 * 60), label="minutes") * 60 * 10**6
        period = data.draw(st.sampled_from(["2026-09", "2026-10", "2026-11"]), label="period")
        ids = data.draw(st.booleans(), label="ids")
        expected = period_report_dict(replay.period_report(LOCAL_ADMIN, AGREEMENT, period, t, Cut(position=cut), ids))
        assert period_report_dict(model.period_report(LOCAL_ADMIN, AGREEMENT, period, t, Cut(position=cut),
                                   ids)) == expected
        # A restatement from the model (moved ids only) equals the replayed one.
        later = cut + (last - cut) * data.draw(st.integers(0, 100), label="later") // 100
        assert model.restatement(LOCAL_ADMIN, AGREEMENT, period, t, Cut(position=cut),
                                 Cut(position=later)) == replay.restatement(
            LOCAL_ADMIN, AGREEMENT, period, t, Cut(position=cut), Cut(position=later))
