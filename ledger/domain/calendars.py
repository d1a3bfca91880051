"""Business-time arithmetic on integer-microsecond instants (spec 2, 10.17).

The working time of a calendar is a set of UTC instants: the weekly intervals
of every local date that is not a holiday, merged in local wall time (across
midnight too), each merged interval then mapped to UTC with fold=0 (10.24).
Every function here is a question about that one set, so additivity and the
add/elapsed inverse hold by construction.

The set is materialised lazily in fixed UTC blocks.  Each block stores its
clipped, coalesced intervals plus running totals, so elapsed time inside a
block is two binary searches and a long span is a sum of cached block totals.
Blocks are cut in UTC, not per local day, because a DST gap can make the
intervals of neighbouring local dates overlap or reorder in UTC; building a
block from every local date that could reach it and taking the union keeps
the set exact whatever the zone does.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.domain.agreements import Calendar
from ledger.domain.instants import MICROS_PER_DAY, from_datetime

__all__ = ["business_add", "business_elapsed", "working_intervals"]

_BLOCK_DAYS = 28
_BLOCK = _BLOCK_DAYS * MICROS_PER_DAY
# UTC offsets are strictly within +-24h, so a local date can only reach UTC
# instants within one day either side of the same-numbered UTC date.
_DAY_MARGIN = 2
# business_add gives up after this many consecutive blocks without working
# time (~77 years): only reachable through a zone whose every working
# interval falls into DST gaps, which would otherwise loop forever.
_MAX_EMPTY_BLOCKS = 1000
_EPOCH_DATE = date(1970, 1, 1)
_MINUTES_PER_DAY = 1440


@dataclass(frozen=True, slots=True)
class _Block:
    """Working time inside one UTC block [k*_BLOCK, (k+1)*_BLOCK).

    cum[i] is the working time before ends[i] within the block, so cum[-1]
    is the block's total.
    """

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    cum: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.cum[-1] if self.cum else 0

    def before(self, t: int) -> int:
        """Working time in [block start, t) for t inside the block."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        prior = self.cum[i - 1] if i else 0
        return prior + min(t, self.ends[i]) - self.starts[i]

    def instant_at(self, target: int) -> int:
        """Earliest t with before(t) == target, for 0 < target <= total."""
        i = bisect_left(self.cum, target)
        return self.ends[i] - (self.cum[i] - target)


@dataclass(slots=True)
class _Compiled:
    zone: ZoneInfo
    # weekday -> merged (start_minute, end_minute) pairs in local time
    local: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date]
    has_time: bool
    blocks: dict[int, _Block] = field(default_factory=dict)

    def block(self, k: int) -> _Block:
        found = self.blocks.get(k)
        if found is None:
            found = self._build(k)
            self.blocks[k] = found
        return found

    def _wall_to_utc(self, day: date, minute: int) -> int:
        """The wall time `minute` minutes after local midnight starting
        `day` (so "24:00" is the midnight that starts the next date)."""
        days, minute = divmod(minute, _MINUTES_PER_DAY)
        day += timedelta(days=days)
        hour, minute = divmod(minute, 60)
        return from_datetime(
            datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone, fold=0)
        )

    def _build(self, k: int) -> _Block:
        lo, hi = k * _BLOCK, (k + 1) * _BLOCK
        first = _EPOCH_DATE + timedelta(days=k * _BLOCK_DAYS - _DAY_MARGIN)
        # Merged in local wall time first, across midnight too (a day
        # ending at 24:00 and the next starting at 00:00 are one interval),
        # and only then mapped to UTC (10.24): in a DST gap the two
        # mappings differ. Wall times count minutes from `first`.
        wall: list[tuple[int, int]] = []
        for offset in range(_BLOCK_DAYS + 2 * _DAY_MARGIN):
            day = first + timedelta(days=offset)
            if day in self.holidays:
                continue
            base = offset * _MINUTES_PER_DAY
            for start_min, end_min in self.local[day.weekday()]:
                if wall and base + start_min <= wall[-1][1]:
                    wall[-1] = (wall[-1][0], max(wall[-1][1], base + end_min))
                else:
                    wall.append((base + start_min, base + end_min))
        pieces: list[tuple[int, int]] = []
        for wall_start, wall_end in wall:
            start = max(self._wall_to_utc(first, wall_start), lo)
            end = min(self._wall_to_utc(first, wall_end), hi)
            # Covers both the DST-gap rule (fold=0 end not after start)
            # and pieces of neighbouring dates falling outside the block.
            if end > start:
                pieces.append((start, end))
        pieces.sort()
        starts: list[int] = []
        ends: list[int] = []
        for start, end in pieces:
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        cum: list[int] = []
        running = 0
        for start, end in zip(starts, ends, strict=True):
            running += end - start
            cum.append(running)
        return _Block(tuple(starts), tuple(ends), tuple(cum))


def _merge_local(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(pairs):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


# Calendars are looked up once per clock; hashing a whole calendar (its
# intervals and holidays) on every lookup cost more than the lookup. The
# same Calendar object is usually passed again, so try identity first; the
# entry holds the object, so its id cannot be reused while cached.
_BY_IDENTITY: dict[int, tuple[Calendar, _Compiled]] = {}


def _compile(cal: Calendar) -> _Compiled:
    hit = _BY_IDENTITY.get(id(cal))
    if hit is not None and hit[0] is cal:
        return hit[1]
    compiled = _compile_equal(cal)
    if len(_BY_IDENTITY) >= 1024:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(cal)] = (cal, compiled)
    return compiled


@lru_cache(maxsize=256)
def _compile_equal(cal: Calendar) -> _Compiled:
    try:
        zone = ZoneInfo(cal.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"calendar {cal.id!r}: unknown time zone {cal.timezone!r}") from exc
    per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for iv in cal.weekly:
        if not 0 <= iv.weekday <= 6:
            raise ValueError(f"calendar {cal.id!r}: weekday {iv.weekday} not in 0..6")
        if not 0 <= iv.start_minute < iv.end_minute <= _MINUTES_PER_DAY:
            raise ValueError(
                f"calendar {cal.id!r}: interval {iv.start_minute}..{iv.end_minute}"
                " must satisfy 0 <= start < end <= 1440"
            )
        per_day[iv.weekday].append((iv.start_minute, iv.end_minute))
    local = tuple(_merge_local(pairs) for pairs in per_day)
    return _Compiled(zone, local, frozenset(cal.holidays), any(local))


def _block_index(t: int) -> int:
    return t // _BLOCK


def working_intervals(cal: Calendar, a: int, b: int) -> list[tuple[int, int]]:
    """Maximal disjoint working intervals [start, end) inside [a, b), sorted.

    Touching intervals (a day ending at 24:00 and the next starting at 00:00,
    or pieces split at a block boundary) come back as one interval.
    """
    if b <= a:
        return []
    if cal.always:
        return [(a, b)]
    compiled = _compile(cal)
    out: list[tuple[int, int]] = []
    for k in range(_block_index(a), _block_index(b - 1) + 1):
        blk = compiled.block(k)
        lo = bisect_right(blk.ends, a)
        for raw_start, raw_end in zip(blk.starts[lo:], blk.ends[lo:], strict=True):
            if raw_start >= b:
                break
            start, end = max(raw_start, a), min(raw_end, b)
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], end)
            else:
                out.append((start, end))
    return out


def business_elapsed(cal: Calendar, a: int, b: int) -> int:
    """Working time inside [a, b) in microseconds; 0 when b <= a."""
    if b <= a:
        return 0
    if cal.always:
        return b - a
    compiled = _compile(cal)
    ka, kb = _block_index(a), _block_index(b)
    first = compiled.block(ka)
    if ka == kb:
        return first.before(b) - first.before(a)
    total = first.total - first.before(a)
    for k in range(ka + 1, kb):
        total += compiled.block(k).total
    return total + compiled.block(kb).before(b)


def business_add(cal: Calendar, a: int, d: int) -> int:
    """Earliest t >= a with business_elapsed(cal, a, t) == d.

    For d > 0 the answer lies inside working time or at its end, never at
    the start of a later interval.  Raises ValueError for d < 0 or when the
    calendar has no working time to spend.
    """
    if d < 0:
        raise ValueError(f"cannot add a negative business duration: {d}")
    if d == 0:
        return a
    if cal.always:
        return a + d
    compiled = _compile(cal)
    if not compiled.has_time:
        raise ValueError(f"calendar {cal.id!r} has no working time")
    k = _block_index(a)
    blk = compiled.block(k)
    # Express the goal as a running total within the current block so the
    # first block and the later ones share one code path.
    target = blk.before(a) + d
    empty_run = 0
    while target > blk.total:
        target -= blk.total
        empty_run = empty_run + 1 if blk.total == 0 else 0
        if empty_run > _MAX_EMPTY_BLOCKS:
            raise ValueError(f"calendar {cal.id!r} has no working time after {a}")
        k += 1
        blk = compiled.block(k)
    return blk.instant_at(target)
