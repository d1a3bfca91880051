"""Availability of one service in one period (spec 7, readings 10.11, 10.12
and 10.17).

scheduled = working time of the level's calendar in [period start,
min(period end, T)), minus the merged qualifying maintenance windows of the
service. Downtime is integrated by a sweep over the breakpoints of every
input (scheduled pieces, outage ends, custody changes): between two
consecutive breakpoints the set of open outages, the owning outage and the
org it is charged to are all constant, so each slice contributes
weight x length exactly, as a Fraction of microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

import ledger.domain.sla.intervals as iv
from ledger.domain.agreements import Calendar, MaintenanceWindow
from ledger.domain.calendars import working_intervals
from ledger.domain.sla.facts import IncidentFacts, charged_custody


@dataclass(frozen=True, slots=True)
class WindowStatus:
    window: MaintenanceWindow
    # Qualifies (booked at least the notice ahead): excluded from scheduled.
    excluded: bool


@dataclass(frozen=True, slots=True)
class OutageSpan:
    """One outage, ready for the sweep: clipped at T, with what ownership
    and charging need."""

    incident_id: str
    opened_at: int
    weight: Fraction
    start: int
    end: int
    # Root cause at T if it is a provider: then it is charged everything.
    root_cause_provider: str | None
    # Charged custody (org, start, end) with open ends closed at T.
    custody: tuple[tuple[str, int, int], ...]

    def charged_at(self, t: int) -> str:
        if self.root_cause_provider is not None:
            return self.root_cause_provider
        for org, start, end in self.custody:
            if start <= t < end:
                return org
        # t precedes every custody interval only if an outage started before
        # opened_at, which validation refuses; the last holder is the best
        # available answer for an empty custody.
        return self.custody[-1][0] if self.custody else ""


@dataclass(frozen=True, slots=True)
class DowntimeSlice:
    """A stretch of scheduled time in which one outage owned the downtime and
    one org was charged for it: the pieces the totals are the sum of."""

    start: int
    end: int
    org: str
    incident_id: str
    weight: Fraction

    @property
    def downtime(self) -> Fraction:
        return self.weight * (self.end - self.start)


@dataclass(frozen=True, slots=True)
class AvailabilityResult:
    service: str
    scheduled: int  # µs
    downtime: Fraction  # µs
    downtime_by_org: dict[str, Fraction]  # only orgs with positive downtime
    windows: tuple[WindowStatus, ...]
    # What the statement's timeline draws; downtime is exactly their sum.
    slices: tuple[DowntimeSlice, ...] = ()

    @property
    def availability(self) -> Fraction | None:
        """None when nothing was scheduled (counted as achieved, 10.17)."""
        if self.scheduled == 0:
            return None
        return 1 - self.downtime / self.scheduled

    def shares(self) -> dict[str, Fraction]:
        if self.downtime == 0:
            return {}
        return {org: d / self.downtime for org, d in self.downtime_by_org.items() if d > 0}


def window_qualifies(window: MaintenanceWindow, notice: int | None) -> bool:
    """Booked at least `notice` before it starts; equal qualifies, no notice
    configured means 0 (10.12)."""
    return window.start - window.scheduled_at >= (notice or 0)


def outage_spans(
    facts: IncidentFacts, service: str, providers: tuple[str, ...], evaluated_at: int
) -> list[OutageSpan]:
    """The outages of one incident that count for `service` at T: not voided,
    not opened after T, not excused (root cause customer, 10.11), whatever
    period the incident belongs to. `providers` are the providers of the
    terms the incident is measured against."""
    if not facts.counts or facts.excused or facts.service != service:
        return []
    t = evaluated_at
    custody = tuple(
        (org, start, t if end is None else min(end, t))
        for org, start, end in charged_custody(facts)
    )
    rc = facts.root_cause if facts.root_cause in providers else None
    out: list[OutageSpan] = []
    for outage in facts.outages:
        start, end = outage.start, t if outage.end is None else min(outage.end, t)
        if end > start:
            out.append(OutageSpan(facts.incident_id, facts.opened_at, Fraction(outage.impact),
                                  start, end, rc, custody))
    return out


def scheduled_intervals(
    cal: Calendar,
    start: int,
    end: int,
    *,
    evaluated_at: int,
    service: str,
    windows: Sequence[MaintenanceWindow],
    notice: int | None,
) -> tuple[iv.IntervalSet, tuple[WindowStatus, ...]]:
    """Scheduled time of `service` in the period [start, end) up to T, and
    the service's windows that touch the period, qualifying or not.

    A window booked after T is ignored: like an incident event dated after
    T, the booking had not happened yet (10.8 applied to agreement events).
    """
    mine = sorted(
        (w for w in windows
         if w.service == service and w.start < end and w.end > start
         and w.scheduled_at <= evaluated_at),
        key=lambda w: (w.start, w.end, w.event_id),
    )
    statuses = tuple(WindowStatus(w, window_qualifies(w, notice)) for w in mine)
    excluded = iv.normalize((s.window.start, s.window.end) for s in statuses if s.excluded)
    horizon = min(end, evaluated_at)
    working = iv.normalize(working_intervals(cal, start, horizon)) if horizon > start else []
    return iv.subtract(working, excluded), statuses


def _owner(open_now: list[OutageSpan]) -> OutageSpan:
    """Highest weight; tie: earliest opened_at, then incident id (spec 7)."""
    return min(open_now, key=lambda o: (-o.weight, o.opened_at, o.incident_id))


def evaluate_availability(
    cal: Calendar,
    service: str,
    start: int,
    end: int,
    *,
    evaluated_at: int,
    windows: Sequence[MaintenanceWindow],
    notice: int | None,
    outages: Sequence[OutageSpan],
) -> AvailabilityResult:
    """Availability of `service` over the period [start, end) as known at T.
    `outages` are every counting outage of the service (see outage_spans)."""
    horizon = min(end, evaluated_at)
    scheduled, statuses = scheduled_intervals(
        cal, start, end, evaluated_at=evaluated_at, service=service, windows=windows,
        notice=notice,
    )
    downtime = Fraction(0)
    by_org: dict[str, Fraction] = {}
    slices: list[DowntimeSlice] = []
    relevant = [o for o in outages if o.end > start and o.start < horizon]
    for piece_start, piece_end in scheduled:
        here = [o for o in relevant if o.start < piece_end and o.end > piece_start]
        if not here:
            continue
        cuts = {piece_start, piece_end}
        for o in here:
            for t in (o.start, o.end, *(c for _, a, b in o.custody for c in (a, b))):
                if piece_start < t < piece_end:
                    cuts.add(t)
        points = sorted(cuts)
        for a, b in pairwise(points):
            open_now = [o for o in here if o.start <= a < o.end]
            if not open_now:
                continue
            owner = _owner(open_now)
            amount = owner.weight * (b - a)
            downtime += amount
            org = owner.charged_at(a)
            by_org[org] = by_org.get(org, Fraction(0)) + amount
            _extend(slices, DowntimeSlice(a, b, org, owner.incident_id, owner.weight))
    return AvailabilityResult(
        service=service,
        scheduled=iv.length(scheduled),
        downtime=downtime,
        downtime_by_org={org: d for org, d in sorted(by_org.items()) if d > 0},
        windows=statuses,
        slices=tuple(slices),
    )


def _extend(slices: list[DowntimeSlice], piece: DowntimeSlice) -> None:
    """Appends, merging with the previous slice when nothing but the sweep's
    breakpoint separates them."""
    if slices:
        last = slices[-1]
        if (last.end, last.org, last.incident_id, last.weight) == \
                (piece.start, piece.org, piece.incident_id, piece.weight):
            slices[-1] = DowntimeSlice(last.start, piece.end, last.org, last.incident_id, last.weight)
            return
    slices.append(piece)
