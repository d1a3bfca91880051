"""The typed values of the SLA reports, at report precision.

The engine computes exactly (``PeriodResult``: Fractions, fractional
microseconds); a report is what is stated, rounded once here: ratios to 12
decimals and seconds to whole microseconds, both half-even, money in minor
units, instants in microseconds. Every rendering (the JSON contract in
``render``, protobuf, CSV, tables, HTML, metrics) reads these values, so they
all show the same figures, and a value rebuilt from any lossless rendering
renders the same again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

from ledger.domain.agreements import Money
from ledger.domain.claims import ClaimState
from ledger.domain.money import round_half_even
from ledger.domain.sla.clocks import OUTCOMES, Outcome
from ledger.domain.sla.credits import LevelCredit
from ledger.domain.sla.period import ClockLevelSummary, LevelSummary, PeriodResult

RATIO_DIGITS = 12
_RATIO_SCALE = 10**RATIO_DIGITS
_RATIO_QUANTUM = Decimal(1).scaleb(-RATIO_DIGITS)


def report_ratio(value: Fraction | Decimal | int) -> Decimal:
    """A ratio as reported: 12 decimals, rounded half-even from the exact value."""
    units = round_half_even(Fraction(value) * _RATIO_SCALE)
    return Decimal(units).scaleb(-RATIO_DIGITS).quantize(_RATIO_QUANTUM)


def report_micros(micros: int | Fraction) -> int:
    """A duration as reported: whole microseconds, rounded half-even."""
    return micros if isinstance(micros, int) else round_half_even(Fraction(micros))


@dataclass(frozen=True, slots=True)
class Dispute:
    """A claim not in effect at T on an incident of the period (11.7)."""

    incident_id: str
    event_id: str
    type: str
    claimed_by: str
    awaiting: tuple[str, ...]
    # "open", "disputed" or "awaiting" (no dispute window).
    state: str
    # Deemed accepted then unless disputed; None once disputed or without a window.
    deemed_at: int | None

    @classmethod
    def of(cls, incident_id: str, claim: ClaimState) -> Dispute:
        return cls(incident_id, claim.event_id, claim.type, claim.claimed_by,
                   tuple(claim.awaiting), claim.state, claim.deemed_at)


@dataclass(frozen=True, slots=True)
class MaintenanceWindowResult:
    """A maintenance window of an availability level, and whether its time
    was excluded from the scheduled time (enough notice)."""

    event_id: str
    start: int
    end: int
    scheduled_at: int
    excluded: bool


@dataclass(frozen=True, slots=True)
class LevelResult:
    """One service level in a period. ``kind`` says which figures apply:
    response/resolution levels have ``priority``, ``threshold``, the outcome
    ``counts`` and (unless left out) the ``incidents`` behind them;
    availability levels have ``scheduled``, ``downtime``, ``availability``,
    the downtime by provider and the maintenance windows."""

    id: str
    kind: str
    calendar: str
    objective: Decimal
    achieved: bool
    # None when nothing counted (no clock settled, nothing scheduled).
    attainment: Decimal | None
    shares: Mapping[str, Decimal]
    credit_uncapped: Money
    credit: Money
    credit_split: Mapping[str, int]
    # Availability: the service measured; response/resolution: None or the
    # only service the level applies to (10.26).
    service: str | None = None
    priority: str | None = None
    threshold: int = 0
    counts: Mapping[Outcome, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    # Sorted incident ids per outcome; None when the caller asked for counts only.
    incidents: Mapping[Outcome, tuple[str, ...]] | None = None
    scheduled: int = 0
    downtime: int = 0
    availability: Decimal | None = None
    downtime_by_provider: Mapping[str, int] = field(default_factory=dict)
    maintenance_windows: tuple[MaintenanceWindowResult, ...] = ()

    @property
    def is_availability(self) -> bool:
        return self.kind == "availability"


@dataclass(frozen=True, slots=True)
class PeriodReport:
    """One agreement period at an evaluation instant and a knowledge cut."""

    agreement: str
    period: str
    period_start: int
    period_end: int
    evaluated_at: int
    recorded_position: int
    service_levels: tuple[LevelResult, ...]
    credits_total: Money
    credits_uncapped: Money
    credit_cap: Money
    credits_by_provider: Mapping[str, int]
    disputes: tuple[Dispute, ...] = ()
    # The knowledge cut as asked: a ledger position or an instant (at most
    # one); neither for the latest knowledge.
    as_recorded_position: int | None = None
    as_recorded_instant: int | None = None

    @property
    def currency(self) -> str:
        return self.credits_total.currency

    def level(self, level_id: str) -> LevelResult:
        for item in self.service_levels:
            if item.id == level_id:
                return item
        raise KeyError(level_id)


def period_status(report: PeriodReport) -> str:
    """Whether the period had begun, was running or was over at T."""
    if report.evaluated_at < report.period_start:
        return "not started"
    if report.evaluated_at < report.period_end:
        return "in progress"
    return "closed"


@dataclass(frozen=True, slots=True)
class ClockAtRisk:
    """A running clock (pending outcome) that can still miss, for live operations."""

    incident_id: str
    agreement_id: str
    service_level_id: str
    due_at: int
    # The org holding the incident now ("" before anyone holds it).
    custody: str
    elapsed: int
    threshold: int


def _ratios(shares: Mapping[str, Fraction]) -> dict[str, Decimal]:
    return {org: report_ratio(s) for org, s in sorted(shares.items())}


def _optional_ratio(value: Fraction | None) -> Decimal | None:
    return None if value is None else report_ratio(value)


def _level_result(summary: LevelSummary, currency: str, credit: LevelCredit) -> LevelResult:
    level = summary.level
    common = LevelResult(
        id=level.id, kind=level.kind, calendar=level.calendar, objective=level.objective,
        achieved=summary.achieved, attainment=_optional_ratio(summary.attainment),
        shares=_ratios(summary.shares), credit_uncapped=Money(currency, credit.uncapped),
        credit=Money(currency, credit.credit), credit_split=dict(sorted(credit.split.items())),
        service=level.service,
    )
    if isinstance(summary, ClockLevelSummary):
        return replace(
            common, priority=level.priority, threshold=report_micros(level.threshold or 0),
            counts={o: summary.count(o) for o in OUTCOMES},
            incidents=None if summary.incidents is None else dict(summary.incidents),
        )
    result = summary.result
    return replace(
        common, scheduled=report_micros(result.scheduled), downtime=report_micros(result.downtime),
        availability=_optional_ratio(result.availability),
        downtime_by_provider={
            org: report_micros(d) for org, d in sorted(result.downtime_by_org.items())},
        maintenance_windows=tuple(
            MaintenanceWindowResult(s.window.event_id, s.window.start, s.window.end,
                                    s.window.scheduled_at, s.excluded)
            for s in result.windows),
    )


def build_period_report(
    result: PeriodResult,
    recorded_position: int,
    as_recorded_position: int | None = None,
    as_recorded_instant: int | None = None,
) -> PeriodReport:
    """The report of an evaluated period, at report precision."""
    currency = result.credits.currency
    levels = [_level_result(s, currency, result.credits.level(s.level.id)) for s in result.levels]
    return PeriodReport(
        agreement=result.agreement_id, period=result.period, period_start=result.start,
        period_end=result.end, evaluated_at=result.evaluated_at,
        recorded_position=recorded_position, service_levels=tuple(levels),
        credits_total=Money(currency, result.credits.total),
        credits_uncapped=Money(currency, result.credits.uncapped_total),
        credit_cap=Money(currency, result.credits.cap),
        credits_by_provider=dict(sorted(result.credits.by_provider.items())),
        disputes=tuple(Dispute.of(i, c) for i, c in result.disputes),
        as_recorded_position=as_recorded_position, as_recorded_instant=as_recorded_instant,
    )
