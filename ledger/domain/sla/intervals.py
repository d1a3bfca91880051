"""Sets of UTC instants as sorted lists of disjoint half-open intervals.

Every SLA figure is "business time of some set of instants" (clock running
and not paused, inside an org's charged custody, scheduled and not in
maintenance ...). Building those sets with exact set algebra on integer
microseconds first, and only then measuring them in a calendar, keeps each
rule a one-liner and makes additivity hold by construction.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.domain.agreements import Calendar
from ledger.domain.calendars import business_elapsed

Interval = tuple[int, int]
IntervalSet = list[Interval]


def normalize(intervals: Iterable[Interval]) -> IntervalSet:
    """Sorted, disjoint, non-empty; touching intervals are joined (a set of
    instants has no seam, so [a, b) + [b, c) is [a, c))."""
    out: IntervalSet = []
    for start, end in sorted(iv for iv in intervals if iv[1] > iv[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def intersect(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    """a ∩ b for normalized inputs (two-pointer merge)."""
    out: IntervalSet = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if end > start:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    """a minus b for normalized inputs."""
    out: IntervalSet = []
    j = 0
    for start, end in a:
        cursor = start
        while j < len(b) and b[j][1] <= cursor:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def length(a: IntervalSet) -> int:
    return sum(end - start for start, end in a)


def business_length(cal: Calendar, a: IntervalSet) -> int:
    """Working time of the set in `cal` (business_elapsed is additive, so a
    sum over the disjoint pieces is the working time of their union)."""
    return sum(business_elapsed(cal, start, end) for start, end in a)
