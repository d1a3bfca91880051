"""Section 11 through the public API, with figures derived by hand from the
spec text (not from the code): who a claim awaits, deemed instants, answers
dated after T, disputes before the deemed instant, retracted answers and
claims, pending and accepted voids, "latest root cause wins" and "final
priority" over in-effect claims only, the report's `disputes`, and the
authority rules 11.1 and 11.3. SQLite and PostgreSQL; the read models must
answer as the replay does at every knowledge cut."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.adapters.scenario import read_scenario
from ledger.application.reports import Cut, ReportService
from ledger.cli.load import load_scenario
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.instants import parse_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from tests.support.ledger_server import ledger_client

pytestmark = pytest.mark.e2e

NOW = parse_instant("2026-11-30T00:00:00Z")
T1 = parse_instant("2026-10-20T00:00:00Z")
T2 = parse_instant("2026-10-25T00:00:00Z")
D = "2026-10-"

AGR: dict[str, Any] = {
    "id": "c1", "customer": "cust", "providers": ["pa", "pb"], "timezone": "UTC",
    "effective_from": "2026-09-01T00:00:00Z",
    "monthly_charge": {"currency": "GBP", "minor_units": 1_000_000},
    "at_risk_percent": "100", "policy": "root_cause", "dispute_window": "P2D",
    "services": ["net"],
    "service_levels": [
        {"id": "r1", "kind": "resolution", "priority": "P1", "threshold": "PT1H",
         "calendar": "24x7", "objective": "1", "credit_percent": "10"},
        {"id": "r2", "kind": "resolution", "priority": "P2", "threshold": "PT4H",
         "calendar": "24x7", "objective": "1", "credit_percent": "5"},
    ],
}


def _o(incident: str, at: str) -> dict[str, Any]:
    return {"event_id": f"{incident}-o", "incident_id": incident, "type": "opened",
            "occurred_at": D + at, "actor": "cust", "agreement": "c1", "service": "net",
            "priority": "P1", "custody": "pa"}


def _e(incident: str, suffix: str, kind: str, at: str, actor: str = "pa",
       **fields: Any) -> dict[str, Any]:
    return {"event_id": f"{incident}-{suffix}", "incident_id": incident, "type": kind,
            "occurred_at": D + at, "actor": actor, **fields}


def _answer(incident: str, suffix: str, at: str, actor: str, target: str,
            accept: bool = True) -> dict[str, Any]:
    if accept:
        return _e(incident, suffix, "claim_accepted", at, actor, target_event_id=target)
    return _e(incident, suffix, "claim_disputed", at, actor, target_event_id=target, reason="no")


EVENTS: list[dict[str, Any]] = [
    # A: pb blames pa, pa disputes in time: custody shares (pa 1/4, pb 3/4).
    _o("A", "01T10:00:00Z"), _e("A", "h", "handed_off", "01T10:30:00Z", to="pb"),
    _e("A", "r", "resolved", "01T12:00:00Z", "pb"),
    _e("A", "rc", "root_cause_assigned", "01T13:00:00Z", "pb", root_cause="pa"),
    _answer("A", "d", "02T09:00:00Z", "pa", "A-rc", accept=False),
    # B: root cause `customer` in a resolved, unanswered: deemed at 04T12:00.
    _o("B", "02T10:00:00Z"), _e("B", "r", "resolved", "02T12:00:00Z", root_cause="customer"),
    # C: the same claim, deemed only at 21T00:00 (open at T1).
    _o("C", "18T10:00:00Z"), _e("C", "r", "resolved", "18T12:00:00Z"),
    _e("C", "rc", "root_cause_assigned", "19T00:00:00Z", root_cause="customer"),
    # D: a lowered priority disputed: the final priority stays P1.
    _o("D", "03T10:00:00Z"), _e("D", "p", "priority_changed", "03T10:10:00Z", priority="P2"),
    _answer("D", "d", "03T11:00:00Z", "cust", "D-p", accept=False),
    _e("D", "r", "resolved", "03T12:00:00Z"),
    # E: P3 disputed, so P2 is judged against P1 (in effect just before it):
    # a lowering, open at T1 (P1 missed), deemed by T2 (P2 met).
    _o("E", "18T14:00:00Z"), _e("E", "p3", "priority_changed", "18T14:05:00Z", priority="P3"),
    _answer("E", "d", "18T14:10:00Z", "cust", "E-p3", accept=False),
    _e("E", "p2", "priority_changed", "18T14:15:00Z", priority="P2"),
    _e("E", "r", "resolved", "18T15:30:00Z"),
    # F: a pending void blocks nothing; accepted, it blocks even a
    # retraction of its acceptance.
    _o("F", "05T10:00:00Z"), _e("F", "v", "voided", "05T10:30:00Z", reason="dup"),
    _e("F", "r", "resolved", "05T13:00:00Z"),
    _answer("F", "a", "05T14:00:00Z", "cust", "F-v"),
    _e("F", "xa", "retracted", "06T09:00:00Z", "cust", target_event_id="F-a", reason="x"),
    _e("F", "c", "closed", "06T09:00:00Z"),
    # F2: a disputed void: the incident counts.
    _o("F2", "06T10:00:00Z"), _e("F2", "v", "voided", "06T10:30:00Z", reason="dup"),
    _answer("F2", "d", "06T11:00:00Z", "cust", "F2-v", accept=False),
    _e("F2", "r", "resolved", "06T12:00:00Z"),
    # G: an accepted void retracted by its author (not by the customer).
    _o("G", "07T10:00:00Z"), _e("G", "v", "voided", "07T10:30:00Z", reason="dup"),
    _answer("G", "a", "07T10:35:00Z", "cust", "G-v"),
    _e("G", "xv-bad", "retracted", "07T11:00:00Z", "cust", target_event_id="G-v", reason="x"),
    _e("G", "xv", "retracted", "07T11:00:00Z", target_event_id="G-v", reason="mistake"),
    _e("G", "r", "resolved", "07T10:50:00Z"),
    # H: a claim retracted by its author is no claim at all.
    _o("H", "08T10:00:00Z"), _e("H", "r", "resolved", "08T12:00:00Z"),
    _e("H", "rc", "root_cause_assigned", "08T12:30:00Z", root_cause="customer"),
    _e("H", "x", "retracted", "08T13:00:00Z", target_event_id="H-rc", reason="wrong"),
    # I: a retracted dispute counts as never given: deemed, excused.
    _o("I", "09T10:00:00Z"), _e("I", "r", "resolved", "09T12:00:00Z", root_cause="customer"),
    _answer("I", "d", "09T13:00:00Z", "cust", "I-r", accept=False),
    _e("I", "x", "retracted", "09T14:00:00Z", "cust", target_event_id="I-d", reason="ok"),
    # J: pb's admission stands; its later claim against pa is disputed.
    _o("J", "10T10:00:00Z"), _e("J", "h", "handed_off", "10T10:30:00Z", to="pb"),
    _e("J", "r", "resolved", "10T12:00:00Z", "pb"),
    _e("J", "rc1", "root_cause_assigned", "10T12:10:00Z", "pb", root_cause="pb"),
    _e("J", "rc2", "root_cause_assigned", "10T13:00:00Z", "pb", root_cause="pa"),
    _answer("J", "d", "10T14:00:00Z", "pa", "J-rc2", accept=False),
    # K: accepted after T1: open at T1, in effect at T2.
    _o("K", "19T01:00:00Z"), _e("K", "r", "resolved", "19T03:00:00Z", root_cause="customer"),
    _answer("K", "a", "21T00:00:00Z", "cust", "K-r"),
    # L: a change by the customer takes effect at once.
    _o("L", "12T10:00:00Z"), _e("L", "h", "handed_off", "12T10:20:00Z", to="pb"),
    _e("L", "p", "priority_changed", "12T10:30:00Z", "cust", priority="P2"),
    _e("L", "r", "resolved", "12T13:00:00Z", "pb"),
    # Authority: corrections are one's own; answers only by the awaited org,
    # only to a claim of the same incident, once, disputes before deemed.
    _e("L", "xp", "retracted", "12T14:00:00Z", target_event_id="L-p", reason="x"),
    _answer("C", "pb-a", "19T01:00:00Z", "pb", "C-rc"),
    _answer("A", "nc", "02T01:00:00Z", "cust", "A-r"),
    _answer("B", "a1", "05T00:00:00Z", "cust", "B-r"),
    _answer("B", "a2", "05T01:00:00Z", "cust", "B-r"),
    _answer("C", "late", "21T00:00:00Z", "cust", "C-rc", accept=False),
    _answer("D", "xi", "03T12:00:00Z", "pa", "A-rc"),
]

REJECTED = {"F-xa", "F-c", "G-xv-bad", "L-xp", "C-pb-a", "A-nc", "B-a2", "C-late", "D-xi"}


def _dispute(incident: str, event_id: str, kind: str, by: str, awaiting: str, state: str,
             deemed_at: str | None = None) -> dict[str, Any]:
    return {"incident_id": incident, "event_id": event_id, "type": kind, "claimed_by": by,
            "awaiting": [awaiting], "state": state, "deemed_at": deemed_at}


def _level(report: dict[str, Any], level_id: str) -> dict[str, Any]:
    return next(sl for sl in report["service_levels"] if sl["id"] == level_id)


def test_claims_figures_derived_by_hand(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"agreements": [AGR], "events": EVENTS}))
    with ledger_client(database_url, lambda: NOW) as (ledger, client):
        summary = load_scenario(client, read_scenario(path))
        assert {EVENTS[r["index"]]["event_id"] for r in summary.rejected} == REJECTED

        at_t1 = period_report_dict(client.period_report("c1", "2026-10", evaluated_at=T1))
        r1 = _level(at_t1, "r1")
        assert r1["incidents"] == {"met": ["G"], "missed": ["A", "C", "D", "E", "F2", "H", "J", "K"],
                                   "pending": [], "excused": ["B", "I"]}
        # Mean of (A: pa 1/4 pb 3/4; J: pb; the other six: pa) over 8.
        assert r1["shares"] == {"pa": "0.781250000000", "pb": "0.218750000000"}
        assert r1["credit_split"] == {"pa": 78125, "pb": 21875}
        assert _level(at_t1, "r2")["incidents"]["met"] == ["L"]
        assert at_t1["disputes"] == [
            _dispute("A", "A-rc", "root_cause_assigned", "pb", "pa", "disputed"),
            _dispute("C", "C-rc", "root_cause_assigned", "pa", "cust", "open",
                     "2026-10-21T00:00:00Z"),
            _dispute("D", "D-p", "priority_changed", "pa", "cust", "disputed"),
            _dispute("E", "E-p3", "priority_changed", "pa", "cust", "disputed"),
            _dispute("E", "E-p2", "priority_changed", "pa", "cust", "open",
                     "2026-10-20T14:15:00Z"),
            _dispute("F2", "F2-v", "voided", "pa", "cust", "disputed"),
            _dispute("J", "J-rc2", "root_cause_assigned", "pb", "pa", "disputed"),
            _dispute("K", "K-r", "resolved", "pa", "cust", "open", "2026-10-21T03:00:00Z"),
        ]
        assert incident_view_dict(client.incident_sla("J", evaluated_at=T1))["root_cause"] == "pb"
        assert incident_view_dict(client.incident_sla("E", evaluated_at=T1))["priority"] == "P1"

        at_t2 = period_report_dict(client.period_report("c1", "2026-10", evaluated_at=T2))
        r1 = _level(at_t2, "r1")
        assert r1["incidents"] == {"met": ["G"], "missed": ["A", "D", "F2", "H", "J"],
                                   "pending": [], "excused": ["B", "C", "I", "K"]}
        assert r1["shares"] == {"pa": "0.650000000000", "pb": "0.350000000000"}
        assert _level(at_t2, "r2")["incidents"]["met"] == ["E", "L"]
        assert [d["event_id"] for d in at_t2["disputes"]] == ["A-rc", "D-p", "E-p3", "F2-v",
                                                             "J-rc2"]
        assert incident_view_dict(client.incident_sla("E", evaluated_at=T2))["priority"] == "P2"

        # The read models answer as the replay does, at every knowledge cut.
        replay = ReportService(ledger.store, lambda: NOW)
        last = at_t2["recorded_position"]
        for position in range(1, last + 1):
            for when in (T1, T2):
                served = period_report_dict(client.period_report("c1", "2026-10", evaluated_at=when,
                                              as_recorded_position=position))
                assert served == period_report_dict(replay.period_report(LOCAL_ADMIN, "c1", "2026-10", when,
                                                      Cut(position=position))), position


def test_a_pending_void_dated_after_t_is_listed(database_url: str, tmp_path: Path) -> None:
    """A void applies whatever its date (10.8): a provider's void dated after
    T is on the record at T, a claim not in effect there, so the report lists
    it (11.7) while the incident still counts; once accepted or deemed it
    voids the incident."""
    events = [
        _o("V1", "10T10:00:00Z"), _e("V1", "r", "resolved", "10T12:00:00Z"),
        {**_e("V1", "v", "voided", "", reason="dup"), "occurred_at": "2026-11-03T00:00:00Z"},
        _o("V2", "11T10:00:00Z"), _e("V2", "r", "resolved", "11T12:00:00Z"),
        {**_e("V2", "v", "voided", "", reason="dup"), "occurred_at": "2026-11-03T00:00:00Z"},
        {**_answer("V2", "a", "", "cust", "V2-v"), "occurred_at": "2026-11-04T00:00:00Z"},
    ]
    path = tmp_path / "voids.json"
    path.write_text(json.dumps({"agreements": [AGR], "events": events}))
    with ledger_client(database_url, lambda: NOW) as (ledger, client):
        assert load_scenario(client, read_scenario(path)).rejected == []
        before = parse_instant("2026-11-01T00:00:00Z")
        report = period_report_dict(client.period_report("c1", "2026-10", evaluated_at=before))
        assert _level(report, "r1")["incidents"]["missed"] == ["V1", "V2"]
        assert report["disputes"] == [
            _dispute("V1", "V1-v", "voided", "pa", "cust", "open", "2026-11-05T00:00:00Z"),
            _dispute("V2", "V2-v", "voided", "pa", "cust", "open", "2026-11-05T00:00:00Z"),
        ]
        replay = ReportService(ledger.store, lambda: NOW)
        assert report == period_report_dict(replay.period_report(LOCAL_ADMIN, "c1", "2026-10", before, None))
        after = period_report_dict(client.period_report("c1", "2026-10", evaluated_at=parse_instant(
            "2026-11-10T00:00:00Z")))
        assert _level(after, "r1")["incidents"]["missed"] == []
        assert after["disputes"] == []
