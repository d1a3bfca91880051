"""Reading 10.18: amendments carry only the terms that change, each named term
replacing its previous value whole, applied in effective_from order (ties in
stored order) whatever order they arrive in. The ledger owns this, not the
loader: through the domain, the service and `sla-ledger load` over gRPC on
SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.adapters.scenario import read_scenario
from ledger.cli.load import load_scenario
from ledger.domain import events as ev
from ledger.domain.agreements import TermsChanges
from ledger.domain.errors import InvalidArgument
from ledger.domain.history import history_from_events
from ledger.domain.instants import parse_instant
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.terms_parsing import parse_terms, parse_terms_changes
from ledger.domain.validation import check_amendment
from tests.support.ledger_server import ledger_client

T = parse_instant("2026-12-05T00:00:00Z")
TERMS: dict[str, Any] = {
    "customer": "cust", "providers": ["pa", "pb"], "timezone": "UTC",
    "monthly_charge": {"currency": "GBP", "minor_units": 1_000_000},
    "at_risk_percent": "50", "policy": "custody", "services": ["net", "desk"],
    "calendars": {"office": {"timezone": "UTC", "weekly": [
        {"day": d, "start": "09:00", "end": "17:00"} for d in ("MON", "TUE", "WED", "THU", "FRI")]}},
    "service_levels": [
        {"id": "p1-response", "kind": "response", "priority": "P1", "threshold": "PT15M",
         "calendar": "24x7", "objective": "0.9", "credit_percent": "10"},
        {"id": "p1-resolution", "kind": "resolution", "priority": "P1", "threshold": "PT4H",
         "calendar": "24x7", "objective": "0.9", "credit_percent": "20"},
    ],
}
# Stored in this order; in force in the other: October's cap is 12, November
# keeps it and adds a tighter response level.
LATER: dict[str, Any] = {"event_id": "amend-nov", "agreement": "agr", "effective_from": "2026-11-01T00:00:00Z",
                         "service_levels": [
             {"id": "p1-response", "kind": "response", "priority": "P1", "threshold": "PT5M",
              "calendar": "24x7", "objective": "0.9", "credit_percent": "10"}]}
EARLIER: dict[str, Any] = {"event_id": "amend-oct", "agreement": "agr", "effective_from": "2026-10-01T00:00:00Z",
                           "at_risk_percent": "12"}


def _amendment(raw: dict[str, Any], position: int) -> ev.LedgerEvent:
    named = {k: v for k, v in raw.items() if k not in ("event_id", "agreement", "effective_from")}
    return ev.LedgerEvent(raw["event_id"], "agr", "", parse_instant(raw["effective_from"]), "admin",
                          ev.AgreementAmended(parse_instant(raw["effective_from"]),
                                              parse_terms_changes(named)), position=position)


def _registered() -> ev.LedgerEvent:
    start = parse_instant("2026-09-01T00:00:00Z")
    return ev.LedgerEvent("reg", "agr", "", start, "admin",
                          ev.AgreementRegistered(start, parse_terms(TERMS)), position=1)


def test_amendments_apply_in_effective_order_whatever_order_they_arrive_in() -> None:
    history = history_from_events("agr", [_registered(), _amendment(LATER, 2),
                                          _amendment(EARLIER, 3)])
    assert history is not None
    september = history.terms_at(parse_instant("2026-09-15T00:00:00Z"))
    october = history.terms_at(parse_instant("2026-10-15T00:00:00Z"))
    november = history.terms_at(parse_instant("2026-11-15T00:00:00Z"))
    assert september and october and november
    assert september.at_risk_percent == Decimal(50)
    assert october.at_risk_percent == Decimal(12)  # not the stored-later November cap
    assert november.at_risk_percent == Decimal(12)  # October's change carries on
    # Each named term replaces its value whole: the list, not one entry of it.
    assert [sl.id for sl in november.service_levels] == ["p1-response"]
    assert [sl.id for sl in october.service_levels] == ["p1-response", "p1-resolution"]
    # The same history in the other arrival order resolves to the same terms.
    other = history_from_events("agr", [_registered(), _amendment(EARLIER, 2),
                                        _amendment(LATER, 3)])
    assert other is not None
    assert [v.terms for v in other.versions] == [v.terms for v in history.versions]


def test_equal_effective_from_applies_in_stored_order() -> None:
    a = dict(EARLIER, event_id="a", at_risk_percent="30")
    b = dict(EARLIER, event_id="b", at_risk_percent="20", policy="root_cause")
    for first, second, cap in ((a, b, 20), (b, a, 30)):
        history = history_from_events("agr", [_registered(), _amendment(first, 2),
                                              _amendment(second, 3)])
        assert history is not None
        terms = history.terms_at(parse_instant("2026-10-02T00:00:00Z"))
        assert terms is not None
        assert terms.at_risk_percent == cap and terms.policy == "root_cause"


def test_amendment_that_would_break_a_later_one_is_refused() -> None:
    needs_office = dict(LATER, service_levels=[dict(LATER["service_levels"][0],
                                                    calendar="office")])
    history = history_from_events("agr", [_registered(), _amendment(needs_office, 2)])
    assert history is not None
    # Accepted: October changes the cap only.
    check_amendment(history, _amendment(EARLIER, 0))
    # Refused: October removes the calendar November's levels use.
    no_calendars = dict(EARLIER, calendars={})
    with pytest.raises(InvalidArgument) as info:
        check_amendment(history, _amendment(no_calendars, 0))
    assert info.value.field == "terms.service_levels[0].calendar"
    assert "position 2" in info.value.message
    # Refused on its own: a level naming a service the agreement lacks.
    bad = dict(EARLIER, service_levels=[dict(LATER["service_levels"][0], service="phone")])
    with pytest.raises(InvalidArgument):
        check_amendment(history, _amendment(bad, 0))
    with pytest.raises(InvalidArgument):
        check_amendment(history, _amendment(dict(EARLIER, effective_from="2026-08-01T00:00:00Z"), 0))


def test_an_amendment_names_at_least_one_known_term() -> None:
    with pytest.raises(InvalidArgument):
        parse_terms_changes({})
    with pytest.raises(InvalidArgument) as info:
        parse_terms_changes({"cap": "12"})
    assert info.value.field == "amendment.cap"
    assert parse_terms_changes({"at_risk_percent": "12"}) == TermsChanges(
        (("at_risk_percent", Decimal(12)),))


def _scenario(tmp_path: Path, amendments: list[dict[str, Any]], name: str) -> Path:
    events: list[dict[str, Any]] = []
    # One P1 incident a month, each responded after 10 minutes: met under
    # PT15M, missed under November's PT5M.
    for n, month in enumerate(("2026-09", "2026-10", "2026-11")):
        incident = f"I-{month}"
        opened = f"{month}-10T10:00:00Z"
        events += [
            {"event_id": f"{incident}-o", "incident_id": incident, "type": "opened",
             "occurred_at": opened, "actor": "cust", "agreement": "agr", "service": "net",
             "priority": "P1", "custody": "pa"},
            {"event_id": f"{incident}-r", "incident_id": incident, "type": "responded",
             "occurred_at": f"{month}-10T10:10:00Z", "actor": "pa"},
            {"event_id": f"{incident}-x", "incident_id": incident, "type": "resolved",
             "occurred_at": f"{month}-10T{15 + n}:00:00Z", "actor": "pa"},
        ]
    doc = {"agreements": [dict(TERMS, id="agr", effective_from="2026-09-01T00:00:00Z")],
           "amendments": amendments, "events": events}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_load_out_of_order_amendments_through_the_api(database_url: str, tmp_path: Path) -> None:
    """`sla-ledger load` sends what each amendment names; the server orders
    them. The file with amendments out of effective_from order gives the same
    reports as the file in order."""
    reports = []
    for name, order in (("in-order.json", [EARLIER, LATER]), ("reversed.json", [LATER, EARLIER])):
        path = _scenario(tmp_path, copy.deepcopy(order), name)
        url = database_url if name == "reversed.json" else f"sqlite:///{tmp_path / 'ref.db'}"
        with ledger_client(url, lambda: T) as (_, client):
            summary = load_scenario(client, read_scenario(path))
            assert summary.rejected == [] and summary.stored == 12
            got = {p: period_report_dict(client.period_report("agr", p, evaluated_at=T))
                   for p in ("2026-09", "2026-10", "2026-11")}
            agreement = client.get_agreement("agr")
            assert [a.terms.at_risk_percent for a in agreement.amendments] == ["12", "12"]
        reports.append({p: {k: v for k, v in r.items() if k != "recorded_position"}
                        for p, r in got.items()})
    assert reports[0] == reports[1]
    october, november = reports[1]["2026-10"], reports[1]["2026-11"]
    # October: resolution missed (5 h > 4 h) earns 20 % of 1,000,000, capped at 12 %.
    assert october["credit_cap"]["minor_units"] == 120_000
    assert october["credits_total"]["minor_units"] == 120_000
    # November: only the new response level (missed), 10 %, under the 12 % cap.
    assert [sl["id"] for sl in november["service_levels"]] == ["p1-response"]
    assert november["service_levels"][0]["missed"] == 1
    assert november["credits_total"]["minor_units"] == 100_000
    assert november["credit_cap"]["minor_units"] == 120_000
    # September: the registration's terms, the 50 % cap.
    assert reports[1]["2026-09"]["credit_cap"]["minor_units"] == 500_000


_AMENDABLE: list[dict[str, Any]] = [
    {"at_risk_percent": "12"}, {"at_risk_percent": "30"}, {"policy": "root_cause"},
    {"policy": "custody"}, {"timezone": "Europe/London"}, {"maintenance_notice": "P2D"},
    {"maintenance_notice": None}, {"service_levels": LATER["service_levels"]},
    {"providers": ["pa"]}, {"providers": ["pa", "pb", "pc"]},
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(range(len(_AMENDABLE)))),
                min_size=1, max_size=7), st.randoms(use_true_random=False))
def test_arrival_order_never_changes_the_terms(
        picks: list[tuple[int, int]], rng: random.Random) -> None:
    """Property: any arrival order of the same amendments gives the same terms
    at every instant, and each instant's terms are the registration with
    every amendment in force applied in effective_from order."""
    months = ("2026-09-01", "2026-09-15", "2026-10-01", "2026-10-15", "2026-11-01", "2026-12-01")
    amendments = [dict(_AMENDABLE[which], event_id=f"a{n}", agreement="agr",
                       effective_from=f"{months[month]}T00:00:00Z")
                  for n, (month, which) in enumerate(picks)]
    shuffled = amendments[:]
    rng.shuffle(shuffled)
    position = {a["event_id"]: 2 + n for n, a in enumerate(shuffled)}  # arrival order
    history = history_from_events("agr", [_registered(), *[
        _amendment(a, position[a["event_id"]]) for a in shuffled]])
    assert history is not None
    # By effective_from, equal dates in the order they were stored.
    expected_order = [_amendment(a, position[a["event_id"]]) for a in sorted(
        shuffled, key=lambda a: (a["effective_from"], position[a["event_id"]]))]
    for day in ("2026-09-01", "2026-09-20", "2026-10-01", "2026-10-20", "2026-11-20", "2027-01-01"):
        instant = parse_instant(f"{day}T00:00:00Z")
        expected = parse_terms(TERMS)
        for event in expected_order:
            assert isinstance(event.payload, ev.AgreementAmended)
            if event.payload.effective_from <= instant:
                expected = event.payload.changes.apply(expected)
        assert history.terms_at(instant) == expected
