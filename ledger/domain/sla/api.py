"""Entry points: from stored events to the rendered views (spec 9).

These apply the knowledge cut themselves: anything with a ledger position
greater than `recorded_position` is ignored, so a caller may pass the full
history and still get the report "as recorded at" that position, byte for
byte the same forever. Items with position 0 (not stored by a ledger, e.g.
terms given directly) are always kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ledger.domain.agreements import AgreementHistory
from ledger.domain.events import LedgerEvent
from ledger.domain.instants import parse_instant
from ledger.domain.sla.clocks import incident_clocks
from ledger.domain.sla.facts import IncidentFacts, charged_custody, fold_incident
from ledger.domain.sla.incident_view import IncidentView, incident_view
from ledger.domain.sla.period import evaluate_period
from ledger.domain.sla.render import downtime_timeline
from ledger.domain.sla.report import ClockAtRisk, PeriodReport, build_period_report


def asked_cut(as_recorded_at: int | str | None) -> tuple[int | None, int | None]:
    """(position, instant) of a knowledge cut as asked: a ledger position, an
    instant in canonical UTC text, or None for the latest knowledge."""
    if isinstance(as_recorded_at, str):
        return None, parse_instant(as_recorded_at)
    return as_recorded_at, None


def _known(position: int, recorded_position: int) -> bool:
    return position == 0 or position <= recorded_position


def cut_history(history: AgreementHistory, recorded_position: int) -> AgreementHistory:
    """The agreement as known at the knowledge cut."""
    versions = tuple(v for v in history.versions if _known(v.position, recorded_position))
    if not versions:
        raise ValueError(
            f"agreement {history.agreement_id!r} unknown at position {recorded_position}"
        )
    maintenance = tuple(m for m in history.maintenance if _known(m.position, recorded_position))
    return replace(history, versions=versions, maintenance=maintenance)


def cut_events(events: Iterable[LedgerEvent], recorded_position: int) -> list[LedgerEvent]:
    return [e for e in events if _known(e.position, recorded_position)]


def fold_all(
    history: AgreementHistory,
    incidents: Mapping[str, Sequence[LedgerEvent]],
    evaluated_at: int,
    recorded_position: int,
) -> list[IncidentFacts]:
    """Facts at T of every incident with an opened event inside the cut;
    `history` must already be cut there."""
    out: list[IncidentFacts] = []
    for incident_id in sorted(incidents):
        known = cut_events(incidents[incident_id], recorded_position)
        if any(e.type == "opened" for e in known):
            out.append(fold_incident(known, evaluated_at, history))
    return out


def compute_incident_view(
    history: AgreementHistory,
    events: Sequence[LedgerEvent],
    evaluated_at: int,
    recorded_position: int,
) -> IncidentView:
    """One incident's view at T. Raises ValueError if its opened event is not
    inside the knowledge cut (the incident is unknown there)."""
    known_history = cut_history(history, recorded_position)
    facts = fold_incident(cut_events(events, recorded_position), evaluated_at, known_history)
    return incident_view(known_history, facts, evaluated_at, recorded_position)


# Six positional parameters: the signature agreed with the read-model side.
def compute_period_report(
    history: AgreementHistory,
    incidents: Mapping[str, Sequence[LedgerEvent]],
    period: str,
    evaluated_at: int,
    recorded_position: int,
    as_recorded_at: int | str | None,
) -> PeriodReport:
    """The period report at T from every incident of the agreement (all
    periods: outages count for the time they overlap this one)."""
    known_history = cut_history(history, recorded_position)
    facts = fold_all(known_history, incidents, evaluated_at, recorded_position)
    result = evaluate_period(known_history, facts, period, evaluated_at)
    return build_period_report(result, recorded_position, *asked_cut(as_recorded_at))


def clocks_at_risk(
    history: AgreementHistory, facts: IncidentFacts, evaluated_at: int
) -> list[ClockAtRisk]:
    """The running clocks (pending, with a due instant) of one incident at T;
    `history` must already be cut to the knowledge being reported on."""
    if not facts.exists or facts.voided:
        return []
    terms = history.terms_at(facts.opened_at)
    if terms is None:
        return []
    custody = charged_custody(facts)
    holder = custody[-1][0] if custody else ""
    return [
        ClockAtRisk(
            incident_id=facts.incident_id, agreement_id=history.agreement_id,
            service_level_id=clock.level_id, due_at=clock.due_at, custody=holder,
            elapsed=clock.elapsed, threshold=clock.threshold,
        )
        for clock in incident_clocks(facts, terms, evaluated_at)
        if clock.outcome == "pending" and clock.due_at is not None
    ]


def compute_clocks_at_risk(
    history: AgreementHistory,
    events: Sequence[LedgerEvent],
    evaluated_at: int,
    recorded_position: int,
) -> list[ClockAtRisk]:
    """One incident's running clocks at T, replayed from its events inside
    the knowledge cut."""
    known_history = cut_history(history, recorded_position)
    facts = fold_incident(cut_events(events, recorded_position), evaluated_at, known_history)
    return clocks_at_risk(known_history, facts, evaluated_at)


def compute_downtime_timeline(
    history: AgreementHistory,
    incidents: Mapping[str, Sequence[LedgerEvent]],
    period: str,
    evaluated_at: int,
    recorded_position: int,
) -> dict[str, list[dict[str, Any]]]:
    """Per availability level, the slices of downtime the report's totals
    add up to, each with the org charged (the statement's timeline)."""
    known_history = cut_history(history, recorded_position)
    facts = fold_all(known_history, incidents, evaluated_at, recorded_position)
    return downtime_timeline(evaluate_period(known_history, facts, period, evaluated_at))
