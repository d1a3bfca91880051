"""Bounds on what one request may ask for, checked on every decoded request
before any servicer runs (docs/operations.md, "Limits").

The checks walk the message generically, by field name and type, so every
RPC (and every field added later) is covered without a servicer remembering
to call them:

- ``google.protobuf.Timestamp``: ``nanos`` in [0, 10^9) (never normalised),
  the instant between ``MIN_INSTANT`` and ``MAX_INSTANT`` (the range the
  calendars compute); an ``evaluated_at`` at most ``max_evaluation_ahead``
  after now, because evaluating clocks costs time proportional to how far
  they run;
- ``google.protobuf.Duration``: seconds and nanos within the protobuf range,
  with one sign;
- identifiers (fields named ``id``, ``*_id``, or naming an org, a service, a
  calendar...) at most ``max_id_chars``; any other text at most
  ``max_text_chars``;
- no text holds a NUL character (PostgreSQL text cannot store one);
- repeated fields at most ``max_repeated`` items, ``events`` at most
  ``max_events_per_append``;
- positions, sizes, counts and indexes not negative;
- ``period`` as ``YYYY-MM`` within the instant range.

A refusal is ``InvalidArgument`` naming the field path the caller sent; it
quotes at most a short prefix of the caller's value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from ledger.domain.errors import InvalidArgument, quote
from ledger.domain.instants import MICROS_PER_DAY, format_instant, parse_instant

MIN_INSTANT = parse_instant("1970-01-01T00:00:00Z")
MAX_INSTANT = parse_instant("9000-01-01T00:00:00Z")
_MAX_DURATION_SECONDS = 315_576_000_000  # the protobuf Duration range (10,000 years)
_MAX_POSITION = 2**62
_PERIOD = re.compile(r"(\d{4})-(\d{2})")

#: Text fields that name something (an org, a service, a calendar): short.
_NAME_FIELDS = frozenset({
    "id", "actor", "custody", "to", "from_org", "reporter", "service", "services", "customer",
    "providers", "calendar", "timezone", "currency", "root_cause", "period",
    "holidays", "start", "end", "objective", "credit_percent", "at_risk_percent", "impact",
})
_COUNT_SUFFIXES = ("position", "size", "index", "count")


@dataclass(frozen=True, slots=True)
class Limits:
    max_events_per_append: int = 10_000
    max_repeated: int = 10_000
    max_id_chars: int = 128
    max_text_chars: int = 4096
    max_evaluation_ahead: int = 366 * MICROS_PER_DAY
    """How far after now an ``evaluated_at`` may lie (microseconds)."""
    max_page_size: int = 1000
    """The most items one page of a listing holds; a caller asking for more gets this many."""
    follower_stall_seconds: float = 30.0
    """How long one ReadLog write may wait on a reader before the stream ends
    RESOURCE_EXHAUSTED (the transport buffers at most its flow-control window)."""


DEFAULT_LIMITS = Limits()
DEFAULT_PAGE_SIZE = 100


def page_size(requested: int, limits: Limits = DEFAULT_LIMITS) -> int:
    """The one page rule for every paged RPC: 0 means the default page, and
    any size is capped at the configured maximum. A negative size never gets
    here: the guard refuses every negative ``*_size`` field of every request
    (check_request)."""
    return min(requested or DEFAULT_PAGE_SIZE, limits.max_page_size)


def check_request(message: Message, limits: Limits, now: Callable[[], int]) -> None:
    """Raises InvalidArgument for the first field outside the limits."""
    _walk(message, "", limits, now)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _walk(message: Message, prefix: str, limits: Limits, now: Callable[[], int]) -> None:
    full_name = message.DESCRIPTOR.full_name
    if full_name == "google.protobuf.Timestamp":
        _check_timestamp(message, prefix, limits, now)
        return
    if full_name == "google.protobuf.Duration":
        _check_duration(message, prefix)
        return
    for field, value in message.ListFields():
        path = _join(prefix, field.name)
        if field.is_repeated:
            _check_repeated(field, value, path, limits, now)
        elif field.message_type is not None:
            _walk(value, path, limits, now)
        else:
            _check_scalar(field.name, value, path, limits)


def _check_repeated(field: Any, value: Any, path: str, limits: Limits,
                    now: Callable[[], int]) -> None:
    cap = limits.max_events_per_append if field.name == "events" else limits.max_repeated
    if len(value) > cap:
        raise InvalidArgument(path, f"at most {cap} items per request, got {len(value)}")
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        for key in value:
            _check_scalar("id", key, f"{path}[{quote(str(key))}]", limits)
            item = value[key]
            if isinstance(item, Message):
                _walk(item, f"{path}[{quote(str(key))}]", limits, now)
            else:
                _check_scalar(field.name, item, f"{path}[{quote(str(key))}]", limits)
        return
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if isinstance(item, Message):
            _walk(item, item_path, limits, now)
        else:
            _check_scalar(field.name, item, item_path, limits)


def _is_name(field_name: str) -> bool:
    return field_name in _NAME_FIELDS or field_name.endswith("_id") or field_name.endswith("_ids")


def _check_scalar(name: str, value: Any, path: str, limits: Limits) -> None:
    if isinstance(value, str):
        cap = limits.max_id_chars if _is_name(name) else limits.max_text_chars
        if len(value) > cap:
            raise InvalidArgument(path, f"at most {cap} characters, got {len(value)} "
                                        f"starting {quote(value)}")
        if "\x00" in value:  # PostgreSQL text cannot hold it; no id or name needs it
            raise InvalidArgument(path, "must not contain the NUL character")
        if name == "period" and value:
            _check_period(value, path)
    elif isinstance(value, int) and not isinstance(value, bool) and name.endswith(_COUNT_SUFFIXES):
        if value < 0:
            raise InvalidArgument(path, "must not be negative")
        if value > _MAX_POSITION:
            raise InvalidArgument(path, f"must be at most {_MAX_POSITION}")


def _check_period(value: str, path: str) -> None:
    match = _PERIOD.fullmatch(value)
    if match is None:
        raise InvalidArgument(path, f"must be YYYY-MM, got {quote(value)}")
    year, month = int(match.group(1)), int(match.group(2))
    first, last = _year(MIN_INSTANT), _year(MAX_INSTANT) - 1
    if not 1 <= month <= 12 or not first <= year <= last:
        raise InvalidArgument(path, f"must be a month from {first}-01 to {last}-12, got {quote(value)}")


def _year(instant: int) -> int:
    return int(format_instant(instant)[:4])


def _check_timestamp(ts: Any, path: str, limits: Limits, now: Callable[[], int]) -> None:
    if not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument(path, "nanos must be in [0, 999999999]")
    lowest, highest = MIN_INSTANT // 1_000_000, MAX_INSTANT // 1_000_000
    if not lowest <= ts.seconds < highest:
        raise InvalidArgument(path, f"must be between {format_instant(MIN_INSTANT)} and "
                                    f"{format_instant(MAX_INSTANT)}")
    if path.rsplit(".", 1)[-1] == "evaluated_at":
        latest = now() + limits.max_evaluation_ahead
        if ts.seconds * 1_000_000 + ts.nanos // 1000 > latest:
            raise InvalidArgument(path, f"must not be more than {limits.max_evaluation_ahead // MICROS_PER_DAY}"
                                        f" days after now ({format_instant(latest)})")


def _check_duration(d: Any, path: str) -> None:
    if not -_MAX_DURATION_SECONDS <= d.seconds <= _MAX_DURATION_SECONDS:
        raise InvalidArgument(path, "seconds out of the Duration range")
    if not -1_000_000_000 < d.nanos < 1_000_000_000:
        raise InvalidArgument(path, "nanos must be in (-999999999, 999999999)")
    if (d.seconds > 0 > d.nanos) or (d.seconds < 0 < d.nanos):
        raise InvalidArgument(path, "seconds and nanos must have the same sign")
