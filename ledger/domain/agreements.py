"""Agreement terms and their history (spec section 3).

Ratios and percents are Decimal (they arrive as decimal strings and must stay
exact); durations and instants are integer microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class TermsVersion:
    """Terms in force from `effective_from` until the next version."""

    effective_from: int
    terms: AgreementTerms
    event_id: str = ""
    position: int = 0


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
    versions: tuple[TermsVersion, ...]
    maintenance: tuple[MaintenanceWindow, ...] = ()

    @property
    def effective_from(self) -> int:
        return self.versions[0].effective_from

    @property
    def current(self) -> AgreementTerms:
        return self.versions[-1].terms

    def terms_at(self, instant: int) -> AgreementTerms | None:
        """The terms in force at `instant` (None before the agreement starts).

        Later-recorded versions win among equal effective_from instants.
        """
        best: TermsVersion | None = None
        for version in self.versions:
            if version.effective_from <= instant and (
                best is None or version.effective_from >= best.effective_from
            ):
                best = version
        return None if best is None else best.terms

    def parties(self) -> frozenset[str]:
        """Every org that was ever a party (for access decisions)."""
        orgs: set[str] = set()
        for version in self.versions:
            orgs.update(version.terms.parties())
        return frozenset(orgs)
