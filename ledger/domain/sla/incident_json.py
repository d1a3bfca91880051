"""The incident view as JSON (`sla-ledger incident --format json`, the
GetIncidentSla RPC's `incident_json`, the scenario's expected incidents),
and read back: the one place its shape is written. Byte for byte the
contract of scenario-format.md; a view read back renders the same again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.incident_view import (
    ClockView,
    CustodySpan,
    HolderSpan,
    IncidentClaim,
    IncidentView,
    OutageSpan,
)
from ledger.domain.sla.render import dispute_dict, fmt_instant, fmt_ratio, fmt_seconds
from ledger.domain.sla.report_json import dispute_from_dict, seconds_micros


def clock_view_dict(clock: ClockView) -> dict[str, Any]:
    return {
        "kind": clock.kind,
        "calendar": clock.calendar,
        "threshold_seconds": fmt_seconds(clock.threshold),
        "elapsed_seconds": fmt_seconds(clock.elapsed),
        "due_at": fmt_instant(clock.due_at),
        "outcome": clock.outcome,
        "stopped": clock.stopped,
        "accountable_seconds": {o: fmt_seconds(t) for o, t in clock.accountable.items()},
        "customer_wait_seconds": fmt_seconds(clock.customer_wait),
        "shares": {o: fmt_ratio(s) for o, s in clock.shares.items()},
    }


def incident_claim_dict(claim: IncidentClaim) -> dict[str, Any]:
    return dispute_dict(claim.dispute) | {
        "claim": dict(claim.claim),
        "accepted_by": list(claim.accepted_by),
        "disputed_by": list(claim.disputed_by),
    }


def incident_view_dict(view: IncidentView) -> dict[str, Any]:
    out: dict[str, Any] = {
        "incident_id": view.incident_id,
        "agreement": view.agreement,
        "evaluated_at": format_instant(view.evaluated_at),
        "recorded_position": view.recorded_position,
        "exists": view.exists,
    }
    if view.exists:
        out |= {
            "voided": view.voided,
            "service": view.service,
            "opened_at": fmt_instant(view.opened_at),
            "period": view.period,
        }
    if view.exists and not view.voided:
        out |= {
            "priority": view.priority,
            "status": view.status,
            "paused": view.paused,
            "root_cause": view.root_cause,
            "excused": view.excused,
            "custody": [{"org": c.org, "from": format_instant(c.start), "to": fmt_instant(c.end)}
                        for c in view.custody],
            "holders": [{"org": h.org, "from": format_instant(h.start), "to": fmt_instant(h.end),
                         "misrouted": h.misrouted} for h in view.holders],
            "outages": [{"from": format_instant(o.start), "to": fmt_instant(o.end),
                         "impact": fmt_ratio(o.impact)} for o in view.outages],
            "claims": [incident_claim_dict(c) for c in view.claims],
        }
    out["service_levels"] = {c.level_id: clock_view_dict(c) for c in view.service_levels}
    return out


# --- reading it back ----------------------------------------------------------


def _instant(text: str | None) -> int | None:
    return None if text is None else parse_instant(text)


def clock_view_from_dict(level_id: str, raw: dict[str, Any]) -> ClockView:
    return ClockView(
        level_id, raw["kind"], raw["calendar"], seconds_micros(raw["threshold_seconds"]),
        seconds_micros(raw["elapsed_seconds"]), _instant(raw["due_at"]), raw["outcome"],
        raw["stopped"], {o: seconds_micros(t) for o, t in raw["accountable_seconds"].items()},
        seconds_micros(raw["customer_wait_seconds"]),
        {o: Decimal(s) for o, s in raw["shares"].items()})


def incident_view_from_dict(raw: dict[str, Any]) -> IncidentView:
    """An incident view from its JSON rendering."""
    view = IncidentView(raw["incident_id"], raw["agreement"], parse_instant(raw["evaluated_at"]),
                        int(raw["recorded_position"]), raw["exists"],
                        service_levels=tuple(clock_view_from_dict(level_id, clock)
                                             for level_id, clock in raw["service_levels"].items()))
    if not view.exists:
        return view
    return IncidentView(
        view.incident_id, view.agreement, view.evaluated_at, view.recorded_position, True,
        voided=raw["voided"], service=raw["service"], opened_at=_instant(raw["opened_at"]),
        period=raw["period"], priority=raw.get("priority"), status=raw.get("status"),
        paused=raw.get("paused", False), root_cause=raw.get("root_cause"),
        excused=raw.get("excused", False),
        custody=tuple(CustodySpan(c["org"], parse_instant(c["from"]), _instant(c["to"]))
                      for c in raw.get("custody", ())),
        holders=tuple(HolderSpan(h["org"], parse_instant(h["from"]), _instant(h["to"]),
                                 h["misrouted"]) for h in raw.get("holders", ())),
        outages=tuple(OutageSpan(parse_instant(o["from"]), _instant(o["to"]), Decimal(o["impact"]))
                      for o in raw.get("outages", ())),
        claims=tuple(IncidentClaim(dispute_from_dict(c), tuple(c["claim"].items()),
                                   tuple(c["accepted_by"]), tuple(c["disputed_by"]))
                     for c in raw.get("claims", ())),
        service_levels=view.service_levels,
    )
