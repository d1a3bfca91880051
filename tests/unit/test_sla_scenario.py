"""The worked Hertfordshire scenario, field by field against its expected
output (tests.support.scenarios: the demo's copy and tests/data).

The ledger's write side is not involved: the three events the expected
output lists as rejected are skipped, and the others get positions 1, 2, 3...
in file order, as the ledger would assign them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, MaintenanceWindow, TermsVersion
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import parse_instant
from ledger.domain.sla import (
    compute_incident_view,
    compute_period_report,
    facts_from_dict,
    facts_to_dict,
    facts_valid_at,
    fold_incident,
)
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.terms_parsing import parse_terms
from tests.support.scenarios import EXPECTED, SCENARIO


class Loaded:
    def __init__(self, file_events_known: int | None = None) -> None:
        scenario = json.loads(SCENARIO.read_text())
        expected = json.loads(EXPECTED.read_text())
        rejected = {item["index"] for item in expected["rejected"]}
        (agreement,) = scenario["agreements"]
        assert not scenario["amendments"]
        terms = parse_terms(agreement)
        version = TermsVersion(parse_instant(agreement["effective_from"]), terms)
        self.events: dict[str, list[ev.LedgerEvent]] = {}
        windows: list[MaintenanceWindow] = []
        position = 0
        raw_events = scenario["events"]
        if file_events_known is not None:
            raw_events = raw_events[:file_events_known]
        for index, raw in enumerate(raw_events):
            if index in rejected:
                continue
            position += 1
            event = event_from_dict({**raw, "position": position})
            if isinstance(event.payload, ev.MaintenanceScheduled):
                windows.append(MaintenanceWindow(
                    event.event_id, event.payload.service, event.payload.start,
                    event.payload.end, scheduled_at=event.occurred_at, position=position,
                ))
            else:
                self.events.setdefault(event.incident_id, []).append(event)
        self.position = position
        self.history = AgreementHistory(agreement["id"], (version,), tuple(windows))
        self.expected = expected


@pytest.fixture(scope="module")
def full() -> Loaded:
    return Loaded()


def _walk(actual: Any, expected: Any, path: str = "$") -> Iterator[str]:
    """Every difference, with its JSON path (one assert per field would stop
    at the first)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if list(actual) != list(expected):
            yield f"{path}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            if key in actual:
                yield from _walk(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            yield f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
            yield from _walk(a, e, f"{path}[{i}]")
    elif type(actual) is not type(expected) or actual != expected:
        yield f"{path}: {actual!r} != {expected!r}"


def test_stored_event_count(full: Loaded) -> None:
    assert full.position == full.expected["stored_events"] == 111


@pytest.mark.parametrize("report_index", [0, 1])
def test_period_report(report_index: int) -> None:
    scenario = json.loads(SCENARIO.read_text())
    request = scenario["reports"][report_index]
    loaded = Loaded(request.get("as_recorded_at"))
    expected = loaded.expected["reports"][report_index]
    actual = period_report_dict(compute_period_report(
        loaded.history, loaded.events, request["period"],
        parse_instant(request["evaluated_at"]), loaded.position, request.get("as_recorded_at"),
    ))
    assert list(_walk(actual, expected)) == []
    assert actual == expected


def test_period_report_cut_from_full_history(full: Loaded) -> None:
    """The knowledge cut is applied by position, so the full history cut at
    position 79 gives the as-recorded report."""
    expected = full.expected["reports"][1]
    actual = period_report_dict(compute_period_report(
        full.history, full.events, "2026-10", parse_instant("2026-11-05T00:00:00Z"), 79, 82
    ))
    assert actual == expected


@pytest.mark.parametrize(
    "incident_id", sorted(json.loads(EXPECTED.read_text())["incidents"])
)
def test_incident_view(full: Loaded, incident_id: str) -> None:
    expected = full.expected["incidents"][incident_id]
    actual = incident_view_dict(compute_incident_view(
        full.history, full.events[incident_id],
        parse_instant(expected["evaluated_at"]), expected["recorded_position"],
    ))
    assert list(_walk(actual, expected)) == []
    assert actual == expected


def test_facts_round_trip_through_json(full: Loaded) -> None:
    t = parse_instant("2026-11-05T00:00:00Z")
    for events in full.events.values():
        facts = fold_incident(events, t, full.history)
        assert facts_from_dict(json.loads(json.dumps(facts_to_dict(facts)))) == facts


def test_facts_folded_without_instant_are_reusable_at_report_time(full: Loaded) -> None:
    t = parse_instant("2026-11-05T00:00:00Z")
    for events in full.events.values():
        at_t = fold_incident(events, t, full.history)
        latest = fold_incident(events, None, full.history)
        if facts_valid_at(latest, t):
            # All events precede T, so only the validity bounds can differ.
            assert replace(latest, valid_until=at_t.valid_until) == at_t
        else:
            # HP's lowering of INC-1016 is deemed accepted only on 12 Nov.
            assert at_t.incident_id == "INC-1016"
            assert latest.priority == "P3" and at_t.priority == "P2"
            assert latest.valid_from == parse_instant("2026-11-12T09:00:00Z")
