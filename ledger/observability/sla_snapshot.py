"""The SLA figures the metrics expose, as plain data: one snapshot per agreement
and period, read from a typed period report (and the open claims). Floats
from here on: the metrics display figures, they decide nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.domain.instants import MICROS_PER_SECOND
from ledger.domain.sla.claim_list import ListedClaim
from ledger.domain.sla.report import LevelResult, PeriodReport


@dataclass(frozen=True, slots=True)
class ServiceLevelSnapshot:
    """One service level of one agreement in the current period, as plain data.

    SLI in the form burn-rate rules need (Sloth "events", Pyrra "ratio"):
    ``valid`` counts what the objective is judged on and ``bad_by_provider``
    what went wrong, charged to the accountable provider. For response and
    resolution levels the unit is incidents (valid = met + missed, bad = each
    missed incident apportioned by the period shares); for availability levels
    it is seconds (valid = scheduled seconds, bad = downtime seconds by provider).
    Both restart at each period; the SLI counters add them up across periods.
    """

    service_level: str
    kind: str
    objective: float
    attainment: float | None
    achieved: bool
    valid: float
    bad_by_provider: Mapping[str, float] = field(default_factory=dict)
    breaches: int = 0
    """Missed incidents (response/resolution); 1 if not achieved (availability)."""
    incidents_at_risk: int = 0
    """Clocks still running (pending) that can still miss."""
    credits_by_provider: Mapping[str, int] = field(default_factory=dict)
    """Credit accrued so far, in minor units of ``AgreementSnapshot.currency``."""

    @property
    def error_budget_remaining(self) -> float:
        """Share of the error budget (1 - objective) not yet spent; negative when overspent."""
        if self.attainment is None:
            return 1.0
        budget = 1.0 - self.objective
        spent = 1.0 - self.attainment
        if budget <= 0.0:
            return 1.0 if spent <= 0.0 else 0.0
        return round(1.0 - spent / budget, 9)


CURRENT = "current"
PREVIOUS = "previous"


@dataclass(frozen=True, slots=True)
class AgreementSnapshot:
    """One agreement's figures for one period.

    ``period`` is relative, so series keep their identity across months:
    ``current`` (the month in progress: alerts and burn rates) or ``previous``
    (the month just ended: its final attainment and credits, while invoices
    are drawn up).
    """

    agreement: str
    period_start: float
    """Unix seconds."""
    period_end: float
    evaluated_at: float
    currency: str
    service_levels: Sequence[ServiceLevelSnapshot]
    period: str = CURRENT
    claims_open: Mapping[str, int] = field(default_factory=dict)
    """Org -> claims not in effect still awaiting its answer (any period)."""
    claims_next_deemed: Mapping[str, float] = field(default_factory=dict)
    """Org -> unix seconds at which the first of those is deemed accepted."""


def claim_counts(claims: Iterable[ListedClaim],
                 ) -> tuple[dict[str, int], dict[str, float]]:
    """(open claims per org, first deemed instant per org) of claims as
    ListClaims gives them (those not in effect)."""
    open_by_org: dict[str, int] = {}
    first_deemed: dict[str, int] = {}
    for claim in claims:
        for org in claim.awaiting:
            if org in claim.disputed_by:
                continue
            open_by_org[org] = open_by_org.get(org, 0) + 1
            if claim.deemed_at is not None:
                first_deemed[org] = min(first_deemed.get(org, claim.deemed_at), claim.deemed_at)
    return open_by_org, {org: _seconds(at) for org, at in first_deemed.items()}


SlaSource = Callable[[], Iterable[AgreementSnapshot]]
"""Called on the metrics HTTP thread at scrape time; must be thread-safe and quick."""

UNATTRIBUTED = "unattributed"


def _seconds(micros: int) -> float:
    return micros / MICROS_PER_SECOND


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _level_snapshot(
    level: LevelResult, incidents_at_risk: Mapping[str, int] | None
) -> ServiceLevelSnapshot:
    bad: dict[str, float] = {}
    if level.is_availability:
        valid = float(Decimal(level.scheduled).scaleb(-6))
        for provider, micros in level.downtime_by_provider.items():
            bad[provider] = float(Decimal(micros).scaleb(-6))
        breaches = 0 if level.achieved else 1
        at_risk = 0
        bad_total = float(Decimal(level.downtime).scaleb(-6))
    else:
        missed = level.counts["missed"]
        valid = float(level.counts["met"] + missed)
        for provider, share in level.shares.items():
            bad[provider] = missed * float(share)
        breaches = missed
        at_risk = level.counts["pending"]
        bad_total = float(missed)
    rest = bad_total - sum(bad.values())
    if rest > 1e-6:
        bad[UNATTRIBUTED] = rest
    if incidents_at_risk is not None:
        at_risk = incidents_at_risk.get(level.id, 0)
    return ServiceLevelSnapshot(
        service_level=level.id,
        kind=level.kind,
        objective=float(level.objective),
        attainment=_float(level.attainment),
        achieved=level.achieved,
        valid=valid,
        bad_by_provider=bad,
        breaches=breaches,
        incidents_at_risk=at_risk,
        credits_by_provider=dict(level.credit_split),
    )


def snapshot_from_report(
    report: PeriodReport,
    incidents_at_risk: Mapping[str, int] | None = None,
    period: str = CURRENT,
) -> AgreementSnapshot:
    """An ``AgreementSnapshot`` of a period report.

    ``incidents_at_risk`` (service level id -> running clocks) overrides the
    report's ``pending`` counts; ``period``: ``current`` or ``previous``.
    """
    return AgreementSnapshot(
        agreement=report.agreement,
        period_start=_seconds(report.period_start),
        period_end=_seconds(report.period_end),
        evaluated_at=_seconds(report.evaluated_at),
        currency=report.currency,
        service_levels=tuple(_level_snapshot(sl, incidents_at_risk) for sl in report.service_levels),
        period=period,
    )
