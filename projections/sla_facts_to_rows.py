"""From one incident's facts to the rows of the SLA read models (pure).

Every clock row is exact from `base_at` on: the instant of the incident's
last known event, after which nothing changes but the passing of time.

A row is *settled* when its outcome and shares no longer depend on the
evaluation instant either: the clock has stopped, is held by a pause, or
the incident is excused. Settled rows are summed into per-period tallies.

A running row is kept in closed form: it is pending until `flip_at`
(the first instant its elapsed time exceeds the threshold) and missed from
then on, when the only thing still growing is the current holder's
accountable time. So a report at T >= base_at evaluates no clock: it
counts pending rows and computes the shares of running missed rows with one
calendar call each. Before base_at the incident is folded again from its
events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ledger.domain.agreements import AgreementHistory, Calendar, ServiceLevel
from ledger.domain.calendars import business_add, business_elapsed
from ledger.domain.sla.clocks import Outcome, evaluate_clock, incident_shares
from ledger.domain.sla.clocks import applicable_levels as clock_levels
from ledger.domain.sla.facts import IncidentFacts, facts_to_dict
from ledger.domain.sla.period import LevelTally, incident_period

OPEN_END = 2**62  # an outage still running: overlaps every later period


@dataclass(frozen=True, slots=True)
class RunningClock:
    opened_at: int
    accountable: dict[str, int]  # µs per org at base_at
    holder: str | None  # the org whose accountable time grows
    root_cause: str | None

    def to_json(self) -> str:
        return json.dumps({"opened_at": self.opened_at, "accountable": self.accountable,
                           "holder": self.holder, "root_cause": self.root_cause},
                          separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunningClock:
        raw = json.loads(text)
        return cls(int(raw["opened_at"]), {k: int(v) for k, v in raw["accountable"].items()},
                   raw["holder"], raw["root_cause"])

    def shares_at(self, history: AgreementHistory, level_id: str, base_at: int,
                  evaluated_at: int) -> dict[str, Fraction]:
        """The shares of this (missed) clock at T >= base_at."""
        terms = history.terms_at(self.opened_at)
        if terms is None:
            return {}
        level = next(sl for sl in terms.service_levels if sl.id == level_id)
        accountable = dict(self.accountable)
        if self.holder is not None:
            grown = business_elapsed(terms.calendar(level.calendar), base_at, evaluated_at)
            if grown:
                accountable[self.holder] = accountable.get(self.holder, 0) + grown
        return incident_shares(accountable, terms.policy, self.root_cause, terms.providers)


@dataclass(frozen=True, slots=True)
class ClockRow:
    incident_id: str
    level_id: str
    agreement_id: str
    period: str
    outcome: Outcome
    settled_from: int | None
    shares: dict[str, Fraction]
    base_at: int = 0
    flip_at: int | None = None
    # Running rows only: what the shares at T are computed from.
    running: RunningClock | None = None
    # Digest of everything the clock is computed from (clock_inputs).
    inputs: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.agreement_id, self.period, self.level_id)


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident_id: str
    agreement_id: str
    period: str
    opened_at: int
    last_position: int
    facts_json: str
    valid_from: int | None
    outages_from: int | None
    outages_until: int | None
    # Whether the incident has a claim at some instant (section 11): the
    # only incidents a report's `disputes` can list.
    has_claims: bool = False


def encode_fraction(value: Fraction) -> str:
    # Hex, because sums of many shares have denominators beyond the
    # 4,300-digit limit of int-to-decimal conversion.
    return f"{value.numerator:x}/{value.denominator:x}"


def decode_fraction(text: str) -> Fraction:
    num, den = text.split("/")
    return Fraction(int(num, 16), int(den, 16))


def encode_shares(shares: Mapping[str, Fraction]) -> str:
    return json.dumps({org: encode_fraction(s) for org, s in sorted(shares.items())},
                      separators=(",", ":"))


def decode_shares(text: str) -> dict[str, Fraction]:
    raw: dict[str, str] = json.loads(text)
    return {org: decode_fraction(s) for org, s in raw.items()}


def incident_row(facts: IncidentFacts, history: AgreementHistory, last_position: int,
                 period: str | None = None) -> IncidentRow:
    outages_from = outages_until = None
    if facts.outages:
        outages_from = min(o.start for o in facts.outages)
        outages_until = max(OPEN_END if o.end is None else o.end for o in facts.outages)
    return IncidentRow(
        incident_id=facts.incident_id, agreement_id=facts.agreement_id,
        period=incident_period(history, facts.opened_at) if period is None else period,
        opened_at=facts.opened_at,
        last_position=last_position,
        facts_json=json.dumps(facts_to_dict(facts), separators=(",", ":")),
        valid_from=facts.valid_from, outages_from=outages_from, outages_until=outages_until,
        # Folded with every event, the facts list every event that is a
        # claim at some instant: a priority change can be one at T and not
        # later only if an earlier provider lowering (listed) is pending.
        has_claims=bool(facts.claims),
    )


def _common_inputs(facts: IncidentFacts, terms_versions: int) -> str:
    return repr((terms_versions, facts.opened_at, facts.counts, facts.root_cause,
                 [(p.start, p.end) for p in facts.pauses],
                 [(h.org, h.start, h.end, h.sender, h.misrouted) for h in facts.holders]))


def clock_inputs(facts: IncidentFacts, level: ServiceLevel, terms_versions: int,
                 common: str | None = None) -> str:
    """A digest of every input of one clock row: its kind's running
    intervals, pauses, custody, root cause, whether the incident counts,
    when it opened and which terms were known. Status, outages and the
    instant of the last event are left out on purpose: a `closed` event or
    an outage changes no clock, so its row is kept as it was. (repr of
    ints, strings, bools and None is stable across processes.)"""
    runs = (facts.response,) if level.kind == "response" else facts.resolution
    text = f"{level.id}|{[(s.start, s.end) for s in runs]!r}|" + (
        common if common is not None else _common_inputs(facts, terms_versions))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def clock_rows(facts: IncidentFacts, history: AgreementHistory,
               previous: Mapping[str, ClockRow] | None = None,
               period: str | None = None) -> list[ClockRow]:
    """The incident's clocks as they stand after its last known event.
    `facts` must be folded with every event counted (evaluated_at None).

    A row of `previous` (the rows before this event, by level) whose inputs
    are unchanged is kept as it is, not evaluated again: settled, its
    outcome and shares hold for every later instant; running, its closed
    form holds from its own base_at on (which must not lie after the new
    facts' instant, as it can once a retraction removes the last event)."""
    terms = history.terms_at(facts.opened_at)
    if not facts.counts or terms is None:
        return []
    t = facts.valid_from if facts.valid_from is not None else facts.opened_at
    if period is None:
        period = incident_period(history, facts.opened_at)
    common = _common_inputs(facts, len(history.versions))
    rows: list[ClockRow] = []
    for level in clock_levels(terms, facts.priority, facts.service):
        inputs = clock_inputs(facts, level, len(history.versions), common)
        kept = None if previous is None else previous.get(level.id)
        if kept is not None and kept.inputs == inputs and kept.period == period and (
                kept.settled_from is not None or kept.base_at <= t):
            rows.append(kept)
            continue
        clock = evaluate_clock(facts, level, terms, t, with_due=False)
        settled = clock.stopped or facts.excused or facts.paused_at_end()
        flip_at: int | None = None
        running: RunningClock | None = None
        if not settled:
            assert level.threshold is not None  # clock levels have one
            flip_at = _flip_at(terms.calendar(level.calendar), t,
                               level.threshold + 1 - clock.elapsed)
            holder = facts.holders[-1].charged_to if facts.holders else None
            running = RunningClock(facts.opened_at, clock.accountable, holder, facts.root_cause)
        rows.append(ClockRow(
            incident_id=facts.incident_id, level_id=level.id, agreement_id=facts.agreement_id,
            period=period, outcome=clock.outcome, settled_from=t if settled else None,
            shares=clock.shares, base_at=t, flip_at=flip_at, running=running, inputs=inputs,
        ))
    return rows


def _flip_at(cal: Calendar, base_at: int, remaining: int) -> int | None:
    """First instant the clock's elapsed time exceeds its threshold, with
    `remaining` = threshold + 1µs - elapsed at base_at; None if never (a
    calendar without working time)."""
    if remaining <= 0:
        return base_at
    try:
        return business_add(cal, base_at, remaining)
    except ValueError:
        return None


def add_settled(tallies: dict[tuple[str, str, str], LevelTally], rows: list[ClockRow],
                sign: int) -> None:
    """Adds (or with sign -1 takes back) settled rows to per-period tallies."""
    for row in rows:
        if row.settled_from is None:
            continue
        tally = tallies.get(row.key)
        if tally is None:
            tally = tallies[row.key] = LevelTally(keep_ids=False)
        tally.add(row.incident_id, row.outcome, row.shares, sign)


def tally_from_columns(met: int, missed: int, pending: int, excused: int,
                       shares_sum: str) -> LevelTally:
    tally = LevelTally(keep_ids=False)
    tally.counts.update({"met": int(met), "missed": int(missed), "pending": int(pending),
                         "excused": int(excused)})
    tally.shares_sum = decode_shares(shares_sum)
    return tally


CLOCK_COLUMNS = ("incident_id, level_id, agreement_id, period, outcome, settled_from, shares, "
                 "base_at, flip_at, running, inputs")


def row_from_columns(columns: Sequence[Any]) -> ClockRow:
    (incident_id, level_id, agreement_id, period, outcome, settled_from, shares, base_at,
     flip_at, running, inputs) = columns
    return ClockRow(str(incident_id), str(level_id), str(agreement_id), str(period), outcome,
                    None if settled_from is None else int(settled_from), decode_shares(shares),
                    int(base_at), None if flip_at is None else int(flip_at),
                    None if running is None else RunningClock.from_json(running), str(inputs))


def row_columns(row: ClockRow) -> tuple[Any, ...]:
    return (row.incident_id, row.level_id, row.agreement_id, row.period, row.outcome,
            row.settled_from, encode_shares(row.shares), row.base_at, row.flip_at,
            None if row.running is None else row.running.to_json(), row.inputs)
