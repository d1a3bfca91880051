"""Random valid incident timelines on a one-minute grid for the SLA property
tests (a Monday 08:00 UTC start, the Book's default levels), and writing them
into a Book; claims drawn here are accepted at once by the org they await."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from ledger.domain.instants import format_instant, from_datetime
from tests.support.sla_book import Book

BASE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
MINUTE = 60 * 10**6
THRESHOLDS = {"p1-response": 15, "p1-resolution": 240, "p2-response": 60, "p2-resolution": 480}
OFFICE = {"p2-response", "p2-resolution"}
PROVIDERS = ("pa", "pb")


def at(minute: int) -> str:
    return format_instant(from_datetime(BASE) + minute * MINUTE)


def office_minute(minute: int) -> bool:
    moment = BASE + timedelta(minutes=minute)
    return moment.weekday() < 5 and 9 <= moment.hour < 17


@dataclass
class Step:
    minute: int
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)
    actor: str = "pa"


@st.composite
def timelines(draw: st.DrawFn, max_steps: int = 14) -> list[Step]:  # noqa: C901, PLR0912, PLR0915  a strategy walking the incident's states, one branch per allowed action
    """A valid incident timeline (opened at minute 0), built by only taking
    actions the rules allow in the current state."""
    custody = draw(st.sampled_from(PROVIDERS))
    steps = [Step(0, "opened", {"service": "net", "priority": draw(st.sampled_from(["P1", "P2"])),
                                "custody": custody}, "cust")]
    holder, handoff_open, paused, resolved, closed, outage = custody, None, False, False, False, False
    minute = 0
    for _ in range(draw(st.integers(0, max_steps))):
        minute += draw(st.sampled_from([0, 1, 5, 17, 45, 120, 600, 1500]))
        options = ["root_cause_assigned"]
        if not closed:
            options += ["handed_off", "pause" if not paused else "clock_resumed",
                        "priority_changed", "outage_ended" if outage else "outage_started"]
            options.append("reopened" if resolved else "resolved")
            options += [] if resolved else ["responded"]
            if handoff_open is not None:
                options.append("handoff_rejected")
            if resolved and not outage:
                options.append("closed")
        kind = draw(st.sampled_from(options))
        other = "pb" if holder == "pa" else "pa"
        if kind == "handed_off":
            steps.append(Step(minute, kind, {"to": other}, holder))
            handoff_open, holder = holder, other
        elif kind == "handoff_rejected":
            assert handoff_open is not None
            steps.append(Step(minute, kind, {}, holder))
            holder, handoff_open = handoff_open, None
        elif kind == "pause":
            steps.append(Step(minute, "clock_paused", {}, "cust"))
            paused = True
        elif kind == "clock_resumed":
            steps.append(Step(minute, kind, {}, "cust"))
            paused = False
        elif kind == "priority_changed":
            steps.append(Step(minute, kind, {"priority": draw(st.sampled_from(["P1", "P2"]))},
                              "cust"))
        elif kind == "outage_started":
            impact = draw(st.sampled_from(["0.1", "0.25", "0.5", "0.6", "1"]))
            steps.append(Step(minute, kind, {"impact": impact}, holder))
            outage = True
        elif kind == "outage_ended":
            steps.append(Step(minute, kind, {}, holder))
            outage = False
        elif kind == "resolved":
            rc = draw(st.sampled_from([None, None, "pa", "pb", "third_party", "customer"]))
            steps.append(Step(minute, kind, {"root_cause": rc} if rc else {}, holder))
            steps += accepted(minute, holder, rc)
            resolved = True
        elif kind == "reopened":
            steps.append(Step(minute, kind, {}, "cust"))
            resolved = False
        elif kind == "closed":
            steps.append(Step(minute, kind, {}, "cust"))
            closed = True
        elif kind == "root_cause_assigned":
            rc = draw(st.sampled_from(["pa", "pb", "third_party", "customer"]))
            steps.append(Step(minute, kind, {"root_cause": rc}, "cust"))
            steps += accepted(minute, "cust", rc)
        else:
            steps.append(Step(minute, kind, {}, holder))
    return steps


PREVIOUS = "(the previous event)"


def awaited(actor: str, root_cause: str | None) -> str | None:
    """Whose answer a root cause awaits (sla-semantics 11.2), for the
    generator: the reference below knows nothing of claims, so every claim
    it draws is accepted at once by the org it awaits."""
    if root_cause is None or root_cause == actor:
        return None
    if root_cause in ("customer", "third_party"):
        return None if actor == "cust" else "cust"
    return root_cause


def accepted(minute: int, actor: str, root_cause: str | None) -> list[Step]:
    org = awaited(actor, root_cause)
    if org is None:
        return []
    return [Step(minute, "claim_accepted", {"target_event_id": PREVIOUS}, org)]


def write(book: Book, incident: str, steps: list[Step], shift: int = 0) -> None:
    previous = ""
    for s in steps:
        fields = {k: previous if v == PREVIOUS else v for k, v in s.fields.items()}
        previous = book.add(incident, s.kind, at(s.minute + shift), actor=s.actor,
                            **fields).event_id
