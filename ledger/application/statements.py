"""The monthly statement: one period report with what a reader needs beside
it (missed incidents with their custody, the downtime timeline, six periods
of attainment, the signed checkpoint that covers it).

Every figure comes from the report services at ONE ledger position, the
report's own, so the statement equals `sla-ledger report --format json
--as-recorded-at POSITION` for the same question. Nothing is computed here
but the arrangement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.application.reports import Cut, ReportService
from ledger.domain.access import Principal
from ledger.domain.errors import OutOfRange
from ledger.domain.instants import format_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.period import shift_period
from ledger.domain.sla.report import PeriodReport, period_status
from ledger.domain.sla.report_json import level_dict, period_report_dict

if TYPE_CHECKING:
    from ledger.application.audit import AuditService

PERIODS_CHARTED = 6


def _missed(reports: ReportService, principal: Principal, report: PeriodReport,
            when: int, cut: Cut) -> list[dict[str, Any]]:
    # The statement shows the views' figures as the JSON contract writes them.
    views: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for level in report.service_levels:
        for incident_id in (level.incidents or {}).get("missed", ()):
            if incident_id not in views:
                views[incident_id] = incident_view_dict(
                    reports.incident_view(principal, incident_id, when, cut))
            view = views[incident_id]
            clock = view["service_levels"][level.id]
            out.append({
                "incident_id": incident_id, "service_level": level.id,
                "priority": view.get("priority"), "root_cause": view.get("root_cause"),
                "opened_at": view.get("opened_at"), "status": view.get("status"),
                "elapsed_seconds": clock["elapsed_seconds"],
                "threshold_seconds": clock["threshold_seconds"], "due_at": clock["due_at"],
                "shares": clock["shares"], "accountable_seconds": clock["accountable_seconds"],
                "holders": view.get("holders", []), "evaluated_at": view["evaluated_at"],
            })
    out.sort(key=lambda m: (m["service_level"], m["opened_at"] or "", m["incident_id"]))
    return out


def _history(reports: ReportService, principal: Principal, agreement_id: str,
             report: PeriodReport, when: int, cut: Cut) -> list[dict[str, Any]]:
    """Attainment per level for the PERIODS_CHARTED periods ending with this one."""
    out: list[dict[str, Any]] = []
    for back in range(PERIODS_CHARTED - 1, -1, -1):
        period = shift_period(report.period, -back)
        try:
            past = report if back == 0 else reports.period_report(
                principal, agreement_id, period, when, cut, include_incidents=False)
        except OutOfRange:
            out.append({"period": period, "status": "before the agreement", "levels": []})
            continue
        levels = [level_dict(lv) for lv in past.service_levels]
        out.append({"period": period, "status": period_status(past), "levels": [
            {"id": lv["id"], "objective": lv["objective"], "attainment": lv["attainment"],
             "achieved": lv["achieved"]} for lv in levels]})
    return out


class StatementService:
    def __init__(self, reports: ReportService, audit: AuditService | None = None) -> None:
        self.reports = reports
        self.audit = audit

    def statement(self, principal: Principal, agreement_id: str, period: str,
                  evaluated_at: int | None, cut: Cut | None) -> dict[str, Any]:
        reports = self.reports
        when = reports.clock() if evaluated_at is None else evaluated_at
        report = reports.period_report(principal, agreement_id, period, when, cut)
        position = report.recorded_position
        # Everything else is asked at the report's own position, so one
        # concurrent append cannot make the parts disagree.
        pinned = Cut(position=position)
        parties = reports.parties(principal, agreement_id, position)
        statement: dict[str, Any] = {
            "agreement": agreement_id, "period": period, "status": period_status(report),
            "customer": parties[0], "providers": list(parties[1:]),
            "report": period_report_dict(report),
            "missed": _missed(reports, principal, report, when, pinned),
            "downtime": reports.downtime_timeline(principal, agreement_id, period, when, pinned),
            "history": _history(reports, principal, agreement_id, report, when, pinned),
            "checkpoint": None,
        }
        if self.audit is not None and position > 0:
            signed = self.audit.checkpoint_covering(position)
            cp = signed.checkpoint
            statement["checkpoint"] = {
                "origin": cp.origin, "size": cp.size, "root_hash": cp.root_hash.hex(),
                "key_id": self.audit.key_id, "public_key": self.audit.public_key,
                "signed_at": None if cp.timestamp is None else format_instant(cp.timestamp),
                "note": signed.note,
            }
        statement["commands"] = reproduce_commands(report)
        return statement


def reproduce_commands(report: PeriodReport) -> list[str]:
    """The commands with which anyone recomputes the statement offline."""
    agreement, period = report.agreement, report.period
    bundle = f"audit-{agreement}-{period}"
    return [
        f"sla-ledger export --to {bundle} --agreement {agreement}",
        f"sla-ledger verify {bundle} --key ledger.vkey --partial",
        f"sla-ledger replay {bundle} --partial --agreement {agreement} --period {period} "
        f"--evaluated-at {format_instant(report.evaluated_at)} "
        f"--as-recorded-at {report.recorded_position} "
        "--format json",
    ]
