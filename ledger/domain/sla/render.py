"""The JSON shapes of the incident view and the period report (the contract
in scenario-format.md, laid out as in scenarios/herts-2026-10.expected.json).

Rendering is the only place exact values become text: seconds with 6
decimals, ratios with 12, both rounded half-even from the exact value;
instants in canonical UTC; money as {currency, minor_units}. Org-keyed maps
are sorted by org id so equal inputs always give byte-identical output.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from ledger.domain.agreements import AgreementHistory, ServiceLevel
from ledger.domain.claims import ClaimState
from ledger.domain.instants import MICROS_PER_SECOND, format_instant
from ledger.domain.money import round_half_even
from ledger.domain.sla.clocks import OUTCOMES, ClockResult, incident_clocks
from ledger.domain.sla.facts import IncidentFacts, charged_custody, held_time
from ledger.domain.sla.period import (
    AvailabilityLevelSummary,
    ClockLevelSummary,
    PeriodResult,
    incident_period,
)

RATIO_DIGITS = 12
_RATIO_SCALE = 10**RATIO_DIGITS


def _fixed(units: int, scale: int, digits: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), scale)
    return f"{sign}{whole}.{frac:0{digits}d}"


def fmt_seconds(micros: int | Fraction) -> str:
    """µs (exact, possibly fractional) as seconds with 6 decimals."""
    units = micros if isinstance(micros, int) else round_half_even(Fraction(micros))
    return _fixed(units, MICROS_PER_SECOND, 6)


def fmt_ratio(value: Fraction | Decimal | int) -> str:
    """A ratio with 12 decimals, rounded half-even from the exact value."""
    return _fixed(round_half_even(Fraction(value) * _RATIO_SCALE), _RATIO_SCALE, RATIO_DIGITS)


def fmt_instant(micros: int | None) -> str | None:
    return None if micros is None else format_instant(micros)


def fmt_money(currency: str, minor_units: int) -> dict[str, Any]:
    return {"currency": currency, "minor_units": minor_units}


def _ratios(shares: dict[str, Fraction]) -> dict[str, str]:
    return {org: fmt_ratio(s) for org, s in sorted(shares.items())}


# --- claims (section 11) ----------------------------------------------------


def dispute_view(incident_id: str, claim: ClaimState) -> dict[str, Any]:
    """A claim as the period report's `disputes` lists it (11.7)."""
    return {
        "incident_id": incident_id,
        "event_id": claim.event_id,
        "type": claim.type,
        "claimed_by": claim.claimed_by,
        "awaiting": list(claim.awaiting),
        "state": claim.state,
        "deemed_at": fmt_instant(claim.deemed_at),
    }


def claim_view(incident_id: str, claim: ClaimState) -> dict[str, Any]:
    """A claim in an incident's view: the dispute fields, what is claimed and
    who answered how."""
    return dispute_view(incident_id, claim) | {
        "claim": dict(claim.claim),
        "accepted_by": list(claim.accepted_by),
        "disputed_by": list(claim.disputed_by),
    }


# --- incident view ---------------------------------------------------------


def clock_view(clock: ClockResult) -> dict[str, Any]:
    return {
        "kind": clock.kind,
        "calendar": clock.calendar_id,
        "threshold_seconds": fmt_seconds(clock.threshold),
        "elapsed_seconds": fmt_seconds(clock.elapsed),
        "due_at": fmt_instant(clock.due_at),
        "outcome": clock.outcome,
        "stopped": clock.stopped,
        "accountable_seconds": {o: fmt_seconds(t) for o, t in sorted(clock.accountable.items())},
        "customer_wait_seconds": fmt_seconds(clock.customer_wait),
        "shares": _ratios(clock.shares),
    }


def incident_view(
    history: AgreementHistory,
    facts: IncidentFacts,
    evaluated_at: int,
    recorded_position: int,
) -> dict[str, Any]:
    """One incident's clocks at T, from facts exact at T."""
    out: dict[str, Any] = {
        "incident_id": facts.incident_id,
        "agreement": history.agreement_id,
        "evaluated_at": format_instant(evaluated_at),
        "recorded_position": recorded_position,
        "exists": facts.exists,
    }
    if not facts.exists:
        # Opened after T: it does not exist yet (10.8), so nothing about it
        # is shown.
        out["service_levels"] = {}
        return out
    terms = history.terms_at(facts.opened_at)
    out |= {
        "voided": facts.voided,
        "service": facts.service,
        "opened_at": format_instant(facts.opened_at),
        "period": incident_period(history, facts.opened_at),
    }
    if facts.voided:
        out["service_levels"] = {}
        return out
    clocks = incident_clocks(facts, terms, evaluated_at) if terms is not None else ()
    out |= {
        "priority": facts.priority,
        "status": facts.status,
        "paused": facts.paused_at_end(),
        "root_cause": facts.root_cause,
        "excused": facts.excused,
        "custody": [
            {"org": org, "from": format_instant(a), "to": fmt_instant(b)}
            for org, a, b in charged_custody(facts)
        ],
        "holders": [
            {"org": h.org, "from": format_instant(h.start), "to": fmt_instant(h.end),
             "misrouted": h.misrouted}
            for h in held_time(facts.holders)
        ],
        "outages": [
            {"from": format_instant(o.start), "to": fmt_instant(o.end),
             "impact": fmt_ratio(o.impact)}
            for o in facts.outages if o.end is None or o.end > o.start
        ],
        "claims": [claim_view(facts.incident_id, c) for c in facts.claims],
        "service_levels": {c.level_id: clock_view(c) for c in clocks},
    }
    return out


# --- period report ---------------------------------------------------------


def _level_head(level: ServiceLevel) -> dict[str, Any]:
    head: dict[str, Any] = {"id": level.id, "kind": level.kind}
    if level.kind == "availability":
        head["service"] = level.service
    else:
        head["priority"] = level.priority
        head["threshold_seconds"] = fmt_seconds(level.threshold or 0)
        if level.service is not None:
            head["service"] = level.service
    head["calendar"] = level.calendar
    head["objective"] = str(level.objective)
    return head


def _clock_level(summary: ClockLevelSummary) -> dict[str, Any]:
    out = _level_head(summary.level)
    out["achieved"] = summary.achieved
    out["attainment"] = None if summary.attainment is None else fmt_ratio(summary.attainment)
    for outcome in OUTCOMES:
        out[outcome] = summary.count(outcome)
    if summary.incidents is not None:
        out["incidents"] = {o: list(ids) for o, ids in summary.incidents.items()}
    return out


def _availability_level(summary: AvailabilityLevelSummary) -> dict[str, Any]:
    result = summary.result
    availability = result.availability
    out = _level_head(summary.level)
    out["achieved"] = summary.achieved
    out["attainment"] = None if summary.attainment is None else fmt_ratio(summary.attainment)
    out["scheduled_seconds"] = fmt_seconds(result.scheduled)
    out["downtime_seconds"] = fmt_seconds(result.downtime)
    out["availability"] = None if availability is None else fmt_ratio(availability)
    out["downtime_by_provider_seconds"] = {
        org: fmt_seconds(d) for org, d in sorted(result.downtime_by_org.items())
    }
    out["maintenance_windows"] = [
        {"event_id": s.window.event_id, "start": format_instant(s.window.start),
         "end": format_instant(s.window.end),
         "scheduled_at": format_instant(s.window.scheduled_at), "excluded": s.excluded}
        for s in result.windows
    ]
    return out


def period_report(
    result: PeriodResult, recorded_position: int, as_recorded_at: int | str | None
) -> dict[str, Any]:
    currency = result.credits.currency
    levels: list[dict[str, Any]] = []
    for summary in result.levels:
        item = (
            _clock_level(summary)
            if isinstance(summary, ClockLevelSummary)
            else _availability_level(summary)
        )
        credit = result.credits.level(summary.level.id)
        item["shares"] = _ratios(summary.shares)
        item["credit_uncapped"] = fmt_money(currency, credit.uncapped)
        item["credit"] = fmt_money(currency, credit.credit)
        item["credit_split"] = dict(sorted(credit.split.items()))
        levels.append(item)
    return {
        "agreement": result.agreement_id,
        "period": result.period,
        "period_start": format_instant(result.start),
        "period_end": format_instant(result.end),
        "evaluated_at": format_instant(result.evaluated_at),
        "recorded_position": recorded_position,
        "as_recorded_at": as_recorded_at,
        "service_levels": levels,
        "credits_total": fmt_money(currency, result.credits.total),
        "credits_uncapped": fmt_money(currency, result.credits.uncapped_total),
        "credit_cap": fmt_money(currency, result.credits.cap),
        "credits_by_provider": dict(result.credits.by_provider),
        "disputes": [dispute_view(i, c) for i, c in result.disputes],
    }


def downtime_timeline(result: PeriodResult) -> dict[str, list[dict[str, Any]]]:
    return {
        summary.level.id: [
            {"from": format_instant(s.start), "to": format_instant(s.end), "org": s.org,
             "incident_id": s.incident_id, "impact": fmt_ratio(s.weight),
             "downtime_seconds": fmt_seconds(s.downtime)}
            for s in summary.result.slices
        ]
        for summary in result.levels if isinstance(summary, AvailabilityLevelSummary)
    }
