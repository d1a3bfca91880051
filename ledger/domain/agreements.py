"""Agreement terms and their history (spec section 3).

Ratios and percents are Decimal (they arrive as decimal strings and must stay
exact); durations and instants are integer microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import Decimal
from typing import Any, Literal

Kind = Literal["response", "resolution", "availability"]
Policy = Literal["custody", "root_cause"]

ALWAYS = "24x7"
PRIORITIES = ("P1", "P2", "P3", "P4")
ROOT_CAUSE_CUSTOMER = "customer"
ROOT_CAUSE_THIRD_PARTY = "third_party"


@dataclass(frozen=True, slots=True)
class Money:
    currency: str
    minor_units: int


@dataclass(frozen=True, slots=True)
class WeeklyInterval:
    """Working time on one weekday, in local wall-clock minutes.

    weekday: 0 = Monday .. 6 = Sunday (Python's date.weekday()).
    end_minute may be 1440 ("24:00").
    """

    weekday: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class Calendar:
    """A business calendar; the id "24x7" means every instant counts."""

    id: str
    timezone: str
    weekly: tuple[WeeklyInterval, ...] = ()
    holidays: tuple[date, ...] = ()

    @property
    def always(self) -> bool:
        return self.id == ALWAYS


CALENDAR_24X7 = Calendar(id=ALWAYS, timezone="UTC")


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    id: str
    kind: Kind
    calendar: str
    objective: Decimal
    credit_percent: Decimal
    # response/resolution only
    priority: str | None = None
    threshold: int | None = None
    # availability: the service measured; response/resolution: None, or the
    # only service whose incidents the level applies to (10.26)
    service: str | None = None


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    customer: str
    providers: tuple[str, ...]
    timezone: str
    monthly_charge: Money
    at_risk_percent: Decimal
    policy: Policy
    services: tuple[str, ...]
    calendars: tuple[Calendar, ...]
    service_levels: tuple[ServiceLevel, ...]
    maintenance_notice: int | None = None
    # How long a claim may be disputed before it is deemed accepted (spec
    # 11.4); None: claims are never deemed accepted.
    dispute_window: int | None = None

    def calendar(self, calendar_id: str) -> Calendar:
        if calendar_id == ALWAYS:
            return CALENDAR_24X7
        for cal in self.calendars:
            if cal.id == calendar_id:
                return cal
        raise KeyError(calendar_id)

    def parties(self) -> tuple[str, ...]:
        return (self.customer, *self.providers)


TERM_NAMES: tuple[str, ...] = tuple(f.name for f in fields(AgreementTerms))


@dataclass(frozen=True, slots=True)
class TermsChanges:
    """What an amendment says: the terms it names, each replacing its
    previous value whole (10.18: `service_levels`, `calendars`, `services`
    and `providers` included, no key-by-key merge)."""

    values: tuple[tuple[str, Any], ...]

    def __post_init__(self) -> None:
        unknown = [name for name, _ in self.values if name not in TERM_NAMES]
        if unknown:
            raise ValueError(f"not agreement terms: {unknown}")

    @classmethod
    def complete(cls, terms: AgreementTerms) -> TermsChanges:
        """Every term named: the whole terms replaced."""
        return cls(tuple((name, getattr(terms, name)) for name in TERM_NAMES))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.values)

    def apply(self, terms: AgreementTerms) -> AgreementTerms:
        return replace(terms, **dict(self.values))


@dataclass(frozen=True, slots=True)
class TermsVersion:
    """Terms in force from `effective_from` until the next version.

    `changes` is what an amendment named; its `terms` are then the result of
    applying it (AgreementHistory fills them in). Without `changes`, `terms`
    are complete as given (a registration).
    """

    effective_from: int
    terms: AgreementTerms
    event_id: str = ""
    position: int = 0
    changes: TermsChanges | None = None


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    event_id: str
    service: str
    start: int
    end: int
    scheduled_at: int
    position: int = 0


@dataclass(frozen=True, slots=True)
class AgreementHistory:
    """Everything recorded about one agreement, in knowledge order."""

    agreement_id: str
    # Given in any order; kept in effect order, each amendment applied on
    # top of the terms before it (resolve_versions), so a history cut to
    # fewer versions resolves again from what it keeps.
    versions: tuple[TermsVersion, ...]
    maintenance: tuple[MaintenanceWindow, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", resolve_versions(self.versions))

    @property
    def effective_from(self) -> int:
        return self.versions[0].effective_from

    @property
    def current(self) -> AgreementTerms:
        """The terms in force from the latest effective_from."""
        return self.versions[-1].terms

    def terms_at(self, instant: int) -> AgreementTerms | None:
        """The terms in force at `instant` (None before the agreement starts)."""
        best: TermsVersion | None = None
        for version in self.versions:
            if version.effective_from > instant:
                break
            best = version
        return None if best is None else best.terms

    def parties(self) -> frozenset[str]:
        """Every org that was ever a party (for access decisions)."""
        orgs: set[str] = set()
        for version in self.versions:
            orgs.update(version.terms.parties())
        return frozenset(orgs)


def resolve_versions(versions: tuple[TermsVersion, ...]) -> tuple[TermsVersion, ...]:
    """Versions in effect order, amendments applied (10.18): by
    effective_from, ties in the order stored (position; unstored versions
    keep the order given), each on top of the terms before it, whatever
    order they arrived in."""
    order = sorted(range(len(versions)), key=lambda i: (
        versions[i].effective_from, versions[i].position or 0, i))
    out: list[TermsVersion] = []
    for i in order:
        version = versions[i]
        if version.changes is not None and out:
            version = replace(version, terms=version.changes.apply(out[-1].terms))
        out.append(version)
    return tuple(out)
