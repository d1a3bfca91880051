"""Agreement terms from their plain (JSON-like) form, with precise errors.

Shared by the scenario loader and the proto conversion: both reduce to the
same dict shape, so validation lives once, here.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from ledger.domain.agreements import (
    ALWAYS,
    PRIORITIES,
    TERM_NAMES,
    AgreementTerms,
    Calendar,
    Money,
    ServiceLevel,
    TermsChanges,
    WeeklyInterval,
)
from ledger.domain.errors import InvalidArgument
from ledger.domain.instants import parse_duration

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def parse_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidArgument(field, f"must be an identifier ([A-Za-z0-9._:-], 1-128), got {value!r}")
    return value


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_decimal(value: Any, field: str, *, low: Decimal, high: Decimal | None = None,
                  low_inclusive: bool = True, strict: bool = True) -> Decimal:
    """A decimal string: digits, optionally a point and more digits (10.21).
    `strict=False` is for the ledger's own stored rows, written before
    decimals were stored in fixed-point form."""
    if strict and not (isinstance(value, str) and _DECIMAL.fullmatch(value)):
        raise InvalidArgument(field, f"must be a decimal string (digits, optionally a point "
                                     f"and more digits), got {value!r}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidArgument(field, f"must be a decimal string, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidArgument(field, f"must be a decimal string, got {value!r}") from None
    if not number.is_finite() or (number < low if low_inclusive else number <= low) or (
        high is not None and number > high
    ):
        bounds = f"{'[' if low_inclusive else '('}{low}, {high if high is not None else 'inf'}]"
        raise InvalidArgument(field, f"must be in {bounds}, got {value!r}")
    return number


def decimal_text(value: Decimal) -> str:
    """The canonical decimal string of a value: fixed point, no trailing
    zeros, so equal values give equal text (10.29)."""
    return format(value.normalize(), "f")


def parse_zone(value: Any, field: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidArgument(field, f"unknown IANA time zone {value!r}") from None
    return str(value)


def _parse_minute(value: Any, field: str, *, allow_24: bool) -> int:
    match = re.fullmatch(r"(\d{2}):(\d{2})", value) if isinstance(value, str) else None
    if match is None:
        raise InvalidArgument(field, f"must be HH:MM, got {value!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise InvalidArgument(field, f"not a wall time: {value!r}")
    return hours * 60 + minutes


def parse_calendar(cal_id: str, raw: Mapping[str, Any], field: str) -> Calendar:
    if cal_id == ALWAYS:
        raise InvalidArgument(field, '"24x7" is built in and cannot be redefined')
    zone = parse_zone(raw.get("timezone"), f"{field}.timezone")
    weekly: list[WeeklyInterval] = []
    for i, item in enumerate(raw.get("weekly") or []):
        f = f"{field}.weekly[{i}]"
        day = item.get("day")
        if day not in WEEKDAYS:
            raise InvalidArgument(f"{f}.day", f"must be one of {', '.join(WEEKDAYS)}, got {day!r}")
        start = _parse_minute(item.get("start"), f"{f}.start", allow_24=False)
        end = _parse_minute(item.get("end"), f"{f}.end", allow_24=True)
        if end <= start:
            raise InvalidArgument(f"{f}.end", "must be after start")
        weekly.append(WeeklyInterval(WEEKDAYS.index(day), start, end))
    holidays: list[date] = []
    for i, text in enumerate(raw.get("holidays") or []):
        try:
            holidays.append(date.fromisoformat(text))
        except (TypeError, ValueError):
            raise InvalidArgument(f"{field}.holidays[{i}]", f"must be YYYY-MM-DD, got {text!r}") from None
    return Calendar(cal_id, zone, tuple(weekly), tuple(sorted(set(holidays))))


def parse_service_level(raw: Mapping[str, Any], field: str, calendars: set[str] | None,
                        services: set[str] | None, *, strict: bool = True) -> ServiceLevel:
    """One level; with `calendars` or `services` None, the references to
    them are checked later, against the terms the level ends up in."""
    sl_id = parse_id(raw.get("id"), f"{field}.id")
    kind = raw.get("kind")
    if kind not in ("response", "resolution", "availability"):
        raise InvalidArgument(f"{field}.kind", f"must be response, resolution or availability, got {kind!r}")
    calendar = raw.get("calendar", ALWAYS)
    if not isinstance(calendar, str):
        raise InvalidArgument(f"{field}.calendar", f"must be a calendar id, got {calendar!r}")
    if calendars is not None and calendar != ALWAYS and calendar not in calendars:
        raise InvalidArgument(f"{field}.calendar", f"unknown calendar {calendar!r}")
    objective = parse_decimal(raw.get("objective"), f"{field}.objective", low=Decimal(0),
                              high=Decimal(1), strict=strict)
    credit = parse_decimal(raw.get("credit_percent", "0"), f"{field}.credit_percent",
                           low=Decimal(0), high=Decimal(100), strict=strict)
    if kind == "availability":
        service = _service_ref(raw.get("service"), field, services)
        return ServiceLevel(sl_id, kind, calendar, objective, credit, service=service)
    priority = raw.get("priority")
    if priority not in PRIORITIES:
        raise InvalidArgument(f"{field}.priority", f"must be one of P1..P4, got {priority!r}")
    try:
        threshold = parse_duration(raw.get("threshold"))  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidArgument(f"{field}.threshold", str(exc)) from None
    if threshold <= 0:
        raise InvalidArgument(f"{field}.threshold", "must be positive")
    # Optional: the level then applies only to incidents of that service (10.26).
    only = raw.get("service")
    only = None if only in (None, "") else _service_ref(only, field, services)
    return ServiceLevel(sl_id, kind, calendar, objective, credit, priority=priority,
                        threshold=threshold, service=only)


def _service_ref(value: Any, field: str, services: set[str] | None) -> str:
    """A level's service: an id, and one of the agreement's when those are known."""
    if services is None:
        return parse_id(value, f"{field}.service")
    if value not in services:
        raise InvalidArgument(f"{field}.service", f"not a service of the agreement: {value!r}")
    return str(value)


def _parse_charge(raw: Mapping[str, Any], field: str) -> Money:
    charge = raw.get("monthly_charge")
    if not isinstance(charge, Mapping) or not re.fullmatch(r"[A-Z]{3}", str(charge.get("currency"))):
        raise InvalidArgument(f"{field}.monthly_charge.currency", "must be an ISO 4217 code")
    units = charge.get("minor_units")
    if isinstance(units, str) and re.fullmatch(r"\d+", units):
        units = int(units)
    if not isinstance(units, int) or isinstance(units, bool) or units < 0:
        raise InvalidArgument(f"{field}.monthly_charge.minor_units", "must be a non-negative integer")
    return Money(str(charge["currency"]), units)


def parse_terms(raw: Mapping[str, Any], field: str = "agreement", *,
                strict: bool = True, check_refs: bool = True) -> AgreementTerms:
    """Terms from the scenario-format dict (calendars keyed by id).
    `strict=False`: the ledger's own stored rows (see parse_decimal).
    `check_refs=False` leaves out the checks between terms (check_terms)."""
    customer = parse_id(raw.get("customer"), f"{field}.customer")
    providers = raw.get("providers")
    if not isinstance(providers, list) or not providers:
        raise InvalidArgument(f"{field}.providers", "must list at least one provider")
    provs = tuple(parse_id(p, f"{field}.providers[{i}]") for i, p in enumerate(providers))
    if len(set(provs)) != len(provs):
        raise InvalidArgument(f"{field}.providers", "must be distinct and not the customer")
    zone = parse_zone(raw.get("timezone"), f"{field}.timezone")
    charge = _parse_charge(raw, field)
    at_risk = parse_decimal(raw.get("at_risk_percent", "100"), f"{field}.at_risk_percent",
                            low=Decimal(0), high=Decimal(100), strict=strict)
    policy = raw.get("policy", "custody")
    if policy not in ("custody", "root_cause"):
        raise InvalidArgument(f"{field}.policy", f"must be custody or root_cause, got {policy!r}")
    notice = _optional_duration(raw, "maintenance_notice", field)
    window = _optional_duration(raw, "dispute_window", field)
    services = tuple(parse_id(s, f"{field}.services[{i}]") for i, s in enumerate(raw.get("services") or []))
    if not services or len(set(services)) != len(services):
        raise InvalidArgument(f"{field}.services", "must list distinct services")
    raw_cals = raw.get("calendars") or {}
    if not isinstance(raw_cals, Mapping):
        raise InvalidArgument(f"{field}.calendars", "must map calendar ids to calendars")
    calendars = tuple(
        parse_calendar(parse_id(cid, f"{field}.calendars"), c, f"{field}.calendars.{cid}")
        for cid, c in raw_cals.items()
    )
    if len({c.id for c in calendars}) != len(calendars):
        raise InvalidArgument(f"{field}.calendars", "calendar ids must be distinct")
    raw_levels = raw.get("service_levels") or []
    if not isinstance(raw_levels, list) or not all(isinstance(sl, Mapping) for sl in raw_levels):
        raise InvalidArgument(f"{field}.service_levels", "must be a list of service levels")
    levels = tuple(
        parse_service_level(sl, f"{field}.service_levels[{i}]", None, None, strict=strict)
        for i, sl in enumerate(raw_levels)
    )
    if len({sl.id for sl in levels}) != len(levels):
        raise InvalidArgument(f"{field}.service_levels", "service level ids must be distinct")
    terms = AgreementTerms(
        customer=customer, providers=provs, timezone=zone,
        monthly_charge=charge, at_risk_percent=at_risk,
        policy=policy, services=services, calendars=calendars, service_levels=levels,
        maintenance_notice=notice, dispute_window=window,
    )
    if check_refs:
        check_terms(terms, field)
    return terms


def check_terms(terms: AgreementTerms, field: str = "agreement") -> None:
    """The rules between terms, which an amendment naming only some of them
    can break: parties, and what service levels refer to."""
    if terms.customer in terms.providers:
        raise InvalidArgument(f"{field}.providers", "must be distinct and not the customer")
    calendars = {c.id for c in terms.calendars}
    for i, sl in enumerate(terms.service_levels):
        where = f"{field}.service_levels[{i}]"
        if sl.calendar != ALWAYS and sl.calendar not in calendars:
            raise InvalidArgument(f"{where}.calendar", f"unknown calendar {sl.calendar!r}")
        if (sl.service is not None or sl.kind == "availability") and (
            sl.service not in terms.services
        ):
            raise InvalidArgument(f"{where}.service",
                                  f"not a service of the agreement: {sl.service!r}")


# A complete set of terms for the terms an amendment does not name: parsing
# the amendment on top of it checks each named term on its own.
_FILLER: dict[str, Any] = {
    "customer": "filler-customer", "providers": ["filler-provider"], "timezone": "UTC",
    "monthly_charge": {"currency": "XXX", "minor_units": 0}, "services": ["filler-service"],
}


@lru_cache(maxsize=1)
def filler_terms() -> AgreementTerms:
    """_FILLER parsed: what an amendment's named terms are laid onto to be
    written out whole (unnamed terms then hold filler values)."""
    return parse_terms(_FILLER, check_refs=False)


def parse_terms_changes(raw: Mapping[str, Any], field: str = "amendment", *,
                        strict: bool = True) -> TermsChanges:
    """The terms an amendment names (10.18), each parsed and checked on its
    own; the checks between terms need the terms it applies to
    (check_terms). `maintenance_notice: null` names the notice, removing it."""
    unknown = sorted(k for k in raw if k not in TERM_NAMES)
    if unknown:
        raise InvalidArgument(f"{field}.{unknown[0]}", "is not an agreement term")
    if not raw:
        raise InvalidArgument(field, "an amendment must name at least one term")
    parsed = parse_terms({**_FILLER, **raw}, field, strict=strict, check_refs=False)
    return TermsChanges(tuple((name, getattr(parsed, name)) for name in TERM_NAMES if name in raw))


def terms_changes_to_dict(changes: TermsChanges) -> dict[str, Any]:
    """The inverse of parse_terms_changes: only the named terms."""
    full = terms_to_dict(changes.apply(filler_terms()))
    return {name: full.get(name) for name in changes.names}


def _optional_duration(raw: Mapping[str, Any], key: str, field: str) -> int | None:
    if not raw.get(key):
        return None
    try:
        return parse_duration(raw[key])
    except ValueError as exc:
        raise InvalidArgument(f"{field}.{key}", str(exc)) from None


def _minute_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def terms_to_dict(terms: AgreementTerms) -> dict[str, Any]:
    """The inverse of parse_terms: parse_terms(terms_to_dict(t)) == t."""
    from ledger.domain.instants import format_duration

    out: dict[str, Any] = {
        "customer": terms.customer,
        "providers": list(terms.providers),
        "timezone": terms.timezone,
        "monthly_charge": {"currency": terms.monthly_charge.currency,
                           "minor_units": terms.monthly_charge.minor_units},
        "at_risk_percent": decimal_text(terms.at_risk_percent),
        "policy": terms.policy,
        "services": list(terms.services),
        "calendars": {
            cal.id: {
                "timezone": cal.timezone,
                "weekly": [{"day": WEEKDAYS[w.weekday], "start": _minute_text(w.start_minute),
                            "end": _minute_text(w.end_minute)} for w in cal.weekly],
                "holidays": [d.isoformat() for d in cal.holidays],
            }
            for cal in terms.calendars
        },
        "service_levels": [],
    }
    if terms.maintenance_notice is not None:
        out["maintenance_notice"] = format_duration(terms.maintenance_notice)
    if terms.dispute_window is not None:
        out["dispute_window"] = format_duration(terms.dispute_window)
    for sl in terms.service_levels:
        item: dict[str, Any] = {"id": sl.id, "kind": sl.kind, "calendar": sl.calendar,
                                "objective": decimal_text(sl.objective),
                                "credit_percent": decimal_text(sl.credit_percent)}
        if sl.kind == "availability":
            item["service"] = sl.service
        else:
            item["priority"] = sl.priority
            item["threshold"] = format_duration(sl.threshold or 0)
            if sl.service is not None:
                item["service"] = sl.service
        out["service_levels"].append(item)
    return out
