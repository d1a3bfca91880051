"""The JSON shapes of the incident view and the period report (the contract
in scenario-format.md, laid out as in scenarios/herts-2026-10.expected.json).
The period report's shape is in ``report_json``, from its typed value.

Rendering is the only place exact values become text: seconds with 6
decimals, ratios with 12, both rounded half-even from the exact value;
instants in canonical UTC; money as {currency, minor_units}. Org-keyed maps
are sorted by org id so equal inputs always give byte-identical output.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from ledger.domain.agreements import AgreementHistory
from ledger.domain.claims import ClaimState
from ledger.domain.instants import MICROS_PER_SECOND, format_instant
from ledger.domain.money import round_half_even
from ledger.domain.sla.clocks import ClockResult, incident_clocks
from ledger.domain.sla.facts import IncidentFacts, charged_custody, held_time
from ledger.domain.sla.period import AvailabilityLevelSummary, PeriodResult, incident_period
from ledger.domain.sla.report import RATIO_DIGITS, Dispute

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


def claim_view(incident_id: str, claim: ClaimState) -> dict[str, Any]:
    """A claim in an incident's view: the dispute fields, what is claimed and
    who answered how."""
    return dispute_dict(Dispute.of(incident_id, claim)) | {
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


def dispute_dict(dispute: Dispute) -> dict[str, Any]:
    """A claim as the period report's `disputes` lists it (11.7)."""
    return {
        "incident_id": dispute.incident_id,
        "event_id": dispute.event_id,
        "type": dispute.type,
        "claimed_by": dispute.claimed_by,
        "awaiting": list(dispute.awaiting),
        "state": dispute.state,
        "deemed_at": fmt_instant(dispute.deemed_at),
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
