"""The text forms shared by the JSON shapes of the incident view and the
period report (the contract in scenario-format.md, laid out as in
scenarios/herts-2026-10.expected.json): the shapes themselves are in
``incident_json`` and ``report_json``, from their typed values.

Rendering is the only place exact values become text: seconds with 6
decimals, ratios with 12, both rounded half-even from the exact value;
instants in canonical UTC; money as {currency, minor_units}. Org-keyed maps
are sorted by org id so equal inputs always give byte-identical output.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from ledger.domain.instants import MICROS_PER_SECOND, format_instant
from ledger.domain.money import round_half_even
from ledger.domain.sla.period import AvailabilityLevelSummary, PeriodResult
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
