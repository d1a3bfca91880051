"""The period report in the JSON contract (scenario-format.md, laid out as
in tests/data/herts-2026-10.expected.json), both ways.

``period_report_dict`` is what ``sla-ledger report --format json`` prints and
the deprecated ``report_json`` carries; ``period_report_from_dict`` reads it
back (the worked scenario's expected reports, a server that predates the
structured report). Values keep the report's precision, so reading and
writing again gives the same bytes.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from ledger.domain.agreements import Money
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.clocks import OUTCOMES
from ledger.domain.sla.render import dispute_dict, fmt_instant, fmt_money, fmt_ratio, fmt_seconds
from ledger.domain.sla.report import (
    ClockAtRisk,
    Dispute,
    LevelResult,
    MaintenanceWindowResult,
    PeriodReport,
)


def _money(value: Money) -> dict[str, Any]:
    return fmt_money(value.currency, value.minor_units)


def _report_ratio(value: Decimal | None) -> str | None:
    return None if value is None else fmt_ratio(value)


def _level_head(level: LevelResult) -> dict[str, Any]:
    head: dict[str, Any] = {"id": level.id, "kind": level.kind}
    if level.is_availability:
        head["service"] = level.service
    else:
        head["priority"] = level.priority
        head["threshold_seconds"] = fmt_seconds(level.threshold)
        if level.service is not None:
            head["service"] = level.service
    head["calendar"] = level.calendar
    head["objective"] = str(level.objective)
    head["achieved"] = level.achieved
    head["attainment"] = _report_ratio(level.attainment)
    return head


def level_dict(level: LevelResult) -> dict[str, Any]:
    """One service level of the period report, in the JSON contract's shape."""
    out = _level_head(level)
    if level.is_availability:
        out["scheduled_seconds"] = fmt_seconds(level.scheduled)
        out["downtime_seconds"] = fmt_seconds(level.downtime)
        out["availability"] = _report_ratio(level.availability)
        out["downtime_by_provider_seconds"] = {
            org: fmt_seconds(d) for org, d in sorted(level.downtime_by_provider.items())
        }
        out["maintenance_windows"] = [
            {"event_id": w.event_id, "start": format_instant(w.start),
             "end": format_instant(w.end), "scheduled_at": format_instant(w.scheduled_at),
             "excluded": w.excluded}
            for w in level.maintenance_windows
        ]
    else:
        for outcome in OUTCOMES:
            out[outcome] = level.counts[outcome]
        if level.incidents is not None:
            out["incidents"] = {o: list(ids) for o, ids in level.incidents.items()}
    out["shares"] = {org: fmt_ratio(s) for org, s in sorted(level.shares.items())}
    out["credit_uncapped"] = _money(level.credit_uncapped)
    out["credit"] = _money(level.credit)
    out["credit_split"] = dict(sorted(level.credit_split.items()))
    return out


def as_recorded_at(report: PeriodReport) -> int | str | None:
    """The knowledge cut as asked, as the report states it."""
    if report.as_recorded_position is not None:
        return report.as_recorded_position
    return fmt_instant(report.as_recorded_instant)


def period_report_dict(report: PeriodReport) -> dict[str, Any]:
    """The period report in the JSON contract's shape (scenario-format.md):
    what `sla-ledger report --format json` prints and `report_json` carries."""
    return {
        "agreement": report.agreement,
        "period": report.period,
        "period_start": format_instant(report.period_start),
        "period_end": format_instant(report.period_end),
        "evaluated_at": format_instant(report.evaluated_at),
        "recorded_position": report.recorded_position,
        "as_recorded_at": as_recorded_at(report),
        "service_levels": [level_dict(level) for level in report.service_levels],
        "credits_total": _money(report.credits_total),
        "credits_uncapped": _money(report.credits_uncapped),
        "credit_cap": _money(report.credit_cap),
        "credits_by_provider": dict(sorted(report.credits_by_provider.items())),
        "disputes": [dispute_dict(d) for d in report.disputes],
    }


def clock_at_risk_dict(clock: ClockAtRisk) -> dict[str, Any]:
    return {"incident_id": clock.incident_id, "agreement_id": clock.agreement_id,
            "service_level_id": clock.service_level_id, "due_at": format_instant(clock.due_at),
            "custody": clock.custody, "elapsed_seconds": fmt_seconds(clock.elapsed),
            "threshold_seconds": fmt_seconds(clock.threshold)}


# --- reading it back ----------------------------------------------------------


def seconds_micros(text: str) -> int:
    """Seconds written to 6 places, back to exact microseconds."""
    micros = Decimal(text).scaleb(6)
    if micros != micros.to_integral_value():
        raise ValueError(f"seconds finer than a microsecond: {text!r}")
    return int(micros)


def _ratio(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _money_from(raw: dict[str, Any]) -> Money:
    return Money(raw["currency"], int(raw["minor_units"]))


def level_from_dict(raw: dict[str, Any]) -> LevelResult:
    level = LevelResult(
        id=raw["id"], kind=raw["kind"], calendar=raw["calendar"],
        objective=Decimal(raw["objective"]), achieved=raw["achieved"],
        attainment=_ratio(raw["attainment"]),
        shares={org: Decimal(s) for org, s in raw["shares"].items()},
        credit_uncapped=_money_from(raw["credit_uncapped"]), credit=_money_from(raw["credit"]),
        credit_split=dict(raw["credit_split"]), service=raw.get("service"),
    )
    if level.is_availability:
        return replace(
            level, scheduled=seconds_micros(raw["scheduled_seconds"]),
            downtime=seconds_micros(raw["downtime_seconds"]),
            availability=_ratio(raw["availability"]),
            downtime_by_provider={org: seconds_micros(d) for org, d in
                                  raw["downtime_by_provider_seconds"].items()},
            maintenance_windows=tuple(
                MaintenanceWindowResult(w["event_id"], parse_instant(w["start"]),
                                        parse_instant(w["end"]),
                                        parse_instant(w["scheduled_at"]), w["excluded"])
                for w in raw["maintenance_windows"]),
        )
    incidents = raw.get("incidents")
    return replace(
        level, priority=raw["priority"], threshold=seconds_micros(raw["threshold_seconds"]),
        counts={o: int(raw[o]) for o in OUTCOMES},
        incidents=None if incidents is None else {o: tuple(incidents[o]) for o in OUTCOMES},
    )


def dispute_from_dict(raw: dict[str, Any]) -> Dispute:
    deemed = raw["deemed_at"]
    return Dispute(raw["incident_id"], raw["event_id"], raw["type"], raw["claimed_by"],
                   tuple(raw["awaiting"]), raw["state"],
                   None if deemed is None else parse_instant(deemed))


def period_report_from_dict(raw: dict[str, Any]) -> PeriodReport:
    """A period report from its JSON rendering."""
    asked = raw["as_recorded_at"]
    return PeriodReport(
        agreement=raw["agreement"], period=raw["period"],
        period_start=parse_instant(raw["period_start"]),
        period_end=parse_instant(raw["period_end"]),
        evaluated_at=parse_instant(raw["evaluated_at"]),
        recorded_position=int(raw["recorded_position"]),
        service_levels=tuple(level_from_dict(level) for level in raw["service_levels"]),
        credits_total=_money_from(raw["credits_total"]),
        credits_uncapped=_money_from(raw["credits_uncapped"]),
        credit_cap=_money_from(raw["credit_cap"]),
        credits_by_provider={org: int(v) for org, v in raw["credits_by_provider"].items()},
        disputes=tuple(dispute_from_dict(d) for d in raw["disputes"]),
        as_recorded_position=asked if isinstance(asked, int) else None,
        as_recorded_instant=parse_instant(asked) if isinstance(asked, str) else None,
    )
