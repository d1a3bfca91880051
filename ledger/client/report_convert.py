"""The report values (ledger.domain.sla.report) to and from their protobuf
messages, for the servicer and the client alike (``convert``'s counterpart
for the reports).

Lossless at report precision: ratios and seconds travel as the scenario
format's decimal strings (12 and 6 places), so a report read back from its
message renders exactly as the server's ``report_json``. Only the domain,
the generated code and protobuf are imported, so a client can use it.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from google.protobuf import timestamp_pb2

from ledger.client.convert import micros_to_timestamp, timestamp_to_micros
from ledger.domain.agreements import Money
from ledger.domain.sla.clocks import OUTCOMES, Outcome
from ledger.domain.sla.render import fmt_ratio, fmt_seconds
from ledger.domain.sla.report import (
    ClockAtRisk,
    Dispute,
    LevelResult,
    MaintenanceWindowResult,
    PeriodReport,
)
from ledger.domain.sla.report_json import seconds_micros
from ledger.v1 import common_pb2, reports_pb2

_timestamp = micros_to_timestamp


def _micros(ts: timestamp_pb2.Timestamp) -> int:
    return timestamp_to_micros(ts, "report")


def _ratio_text(value: Decimal | None) -> str:
    return "" if value is None else fmt_ratio(value)


def _ratio(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _seconds_micros(text: str) -> int:
    return seconds_micros(text or "0")


def _money(value: Money) -> common_pb2.Money:
    return common_pb2.Money(currency=value.currency, minor_units=value.minor_units)


def _money_from(msg: common_pb2.Money) -> Money:
    return Money(msg.currency, msg.minor_units)


# -- to protobuf ---------------------------------------------------------------


def _level_to_proto(level: LevelResult) -> reports_pb2.ServiceLevelResult:
    msg = reports_pb2.ServiceLevelResult(
        id=level.id, kind=level.kind, objective=str(level.objective), achieved=level.achieved,
        attainment=_ratio_text(level.attainment), calendar=level.calendar,
        shares={org: fmt_ratio(s) for org, s in level.shares.items()},
        credit=_money(level.credit), credit_uncapped=_money(level.credit_uncapped),
        credit_split=dict(level.credit_split),
    )
    if level.service is not None:
        msg.service = level.service
    if level.is_availability:
        msg.scheduled_seconds = fmt_seconds(level.scheduled)
        msg.downtime_seconds = fmt_seconds(level.downtime)
        msg.availability = _ratio_text(level.availability)
        msg.downtime_by_provider_seconds.update(
            {org: fmt_seconds(d) for org, d in level.downtime_by_provider.items()})
        msg.maintenance_windows.extend(
            reports_pb2.MaintenanceWindowResult(
                event_id=w.event_id, start=_timestamp(w.start), end=_timestamp(w.end),
                scheduled_at=_timestamp(w.scheduled_at), excluded=w.excluded)
            for w in level.maintenance_windows)
        return msg
    if level.priority is not None:
        msg.priority = level.priority
    msg.threshold_seconds = fmt_seconds(level.threshold)
    msg.met, msg.missed = level.counts["met"], level.counts["missed"]
    msg.pending, msg.excused = level.counts["pending"], level.counts["excused"]
    if level.incidents is not None:
        msg.incidents.CopyFrom(reports_pb2.OutcomeIncidents(
            **{o: list(level.incidents.get(o, ())) for o in OUTCOMES}))
    return msg


def dispute_to_proto(dispute: Dispute) -> reports_pb2.Dispute:
    msg = reports_pb2.Dispute(
        incident_id=dispute.incident_id, event_id=dispute.event_id, type=dispute.type,
        claimed_by=dispute.claimed_by, awaiting=dispute.awaiting, state=dispute.state)
    if dispute.deemed_at is not None:
        msg.deemed_at.CopyFrom(_timestamp(dispute.deemed_at))
    return msg


def report_to_proto(report: PeriodReport) -> reports_pb2.PeriodReport:
    msg = reports_pb2.PeriodReport(
        agreement_id=report.agreement, period=report.period,
        period_start=_timestamp(report.period_start), period_end=_timestamp(report.period_end),
        evaluated_at=_timestamp(report.evaluated_at), recorded_position=report.recorded_position,
        service_levels=[_level_to_proto(level) for level in report.service_levels],
        credits_total=_money(report.credits_total), credit_cap=_money(report.credit_cap),
        credits_uncapped=_money(report.credits_uncapped),
        credits_by_provider=dict(report.credits_by_provider),
        disputes=[dispute_to_proto(d) for d in report.disputes],
    )
    if report.as_recorded_position is not None:
        msg.as_recorded_at.position = report.as_recorded_position
    elif report.as_recorded_instant is not None:
        msg.as_recorded_at.recorded_at.CopyFrom(_timestamp(report.as_recorded_instant))
    return msg


def clock_to_proto(clock: ClockAtRisk) -> reports_pb2.ClockAtRisk:
    return reports_pb2.ClockAtRisk(
        incident_id=clock.incident_id, agreement_id=clock.agreement_id,
        service_level_id=clock.service_level_id, due_at=_timestamp(clock.due_at),
        custody=clock.custody, elapsed_seconds=fmt_seconds(clock.elapsed),
        threshold_seconds=fmt_seconds(clock.threshold))


# -- from protobuf -------------------------------------------------------------


def _level_from_proto(msg: reports_pb2.ServiceLevelResult) -> LevelResult:
    common = LevelResult(
        id=msg.id, kind=msg.kind, calendar=msg.calendar, objective=Decimal(msg.objective),
        achieved=msg.achieved, attainment=_ratio(msg.attainment),
        shares={org: Decimal(s) for org, s in sorted(msg.shares.items())},
        credit_uncapped=_money_from(msg.credit_uncapped), credit=_money_from(msg.credit),
        credit_split=dict(sorted(msg.credit_split.items())),
        service=msg.service if msg.HasField("service") else None,
    )
    if common.is_availability:
        return replace(
            common, scheduled=_seconds_micros(msg.scheduled_seconds),
            downtime=_seconds_micros(msg.downtime_seconds), availability=_ratio(msg.availability),
            downtime_by_provider={org: _seconds_micros(d) for org, d in
                                  sorted(msg.downtime_by_provider_seconds.items())},
            maintenance_windows=tuple(
                MaintenanceWindowResult(w.event_id, _micros(w.start), _micros(w.end),
                                        _micros(w.scheduled_at), w.excluded)
                for w in msg.maintenance_windows),
        )
    counts: dict[Outcome, int] = {"met": msg.met, "missed": msg.missed,
                                  "pending": msg.pending, "excused": msg.excused}
    incidents: dict[Outcome, tuple[str, ...]] | None = None
    if msg.HasField("incidents"):
        incidents = {o: tuple(getattr(msg.incidents, o)) for o in OUTCOMES}
    return replace(
        common, priority=msg.priority if msg.HasField("priority") else None,
        threshold=_seconds_micros(msg.threshold_seconds), counts=counts, incidents=incidents,
    )


def _dispute_from_proto(msg: reports_pb2.Dispute) -> Dispute:
    return Dispute(msg.incident_id, msg.event_id, msg.type, msg.claimed_by,
                   tuple(msg.awaiting), msg.state,
                   _micros(msg.deemed_at) if msg.HasField("deemed_at") else None)


def report_from_proto(msg: reports_pb2.PeriodReport) -> PeriodReport:
    cut = msg.as_recorded_at.WhichOneof("cut") if msg.HasField("as_recorded_at") else None
    return PeriodReport(
        agreement=msg.agreement_id, period=msg.period,
        period_start=_micros(msg.period_start), period_end=_micros(msg.period_end),
        evaluated_at=_micros(msg.evaluated_at), recorded_position=msg.recorded_position,
        service_levels=tuple(_level_from_proto(level) for level in msg.service_levels),
        credits_total=_money_from(msg.credits_total),
        credits_uncapped=_money_from(msg.credits_uncapped),
        credit_cap=_money_from(msg.credit_cap),
        credits_by_provider=dict(sorted(msg.credits_by_provider.items())),
        disputes=tuple(_dispute_from_proto(d) for d in msg.disputes),
        as_recorded_position=msg.as_recorded_at.position if cut == "position" else None,
        as_recorded_instant=(_micros(msg.as_recorded_at.recorded_at)
                             if cut == "recorded_at" else None),
    )


def clock_from_proto(msg: reports_pb2.ClockAtRisk) -> ClockAtRisk:
    return ClockAtRisk(
        incident_id=msg.incident_id, agreement_id=msg.agreement_id,
        service_level_id=msg.service_level_id, due_at=_micros(msg.due_at), custody=msg.custody,
        elapsed=_seconds_micros(msg.elapsed_seconds),
        threshold=_seconds_micros(msg.threshold_seconds))
