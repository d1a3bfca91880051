"""Instants as integer microseconds since the Unix epoch (UTC), and durations
as integer microseconds: exact, totally ordered, cheap to compare.

Conversion to and from datetime lives here so the rest of the domain never
touches floats or naive datetimes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

MICROS_PER_SECOND = 1_000_000
MICROS_PER_MINUTE = 60 * MICROS_PER_SECOND
MICROS_PER_HOUR = 60 * MICROS_PER_MINUTE
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_datetime(value: datetime) -> int:
    """Aware datetime -> microseconds. Naive datetimes are refused: their
    meaning depends on the machine's zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("instant has no UTC offset")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")


_ONE_MICROSECOND = timedelta(microseconds=1)


def parse_instant(text: str) -> int:
    """RFC 3339 with an explicit offset ('Z' or +hh:mm)."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(f"not an RFC 3339 instant with an offset: {text!r}")
    # The pattern requires an offset, so the datetime is aware: exact
    # timedelta arithmetic, no float on the way.
    return (datetime.fromisoformat(text.replace("z", "Z")) - _EPOCH) // _ONE_MICROSECOND


def format_instant(micros: int) -> str:
    """Canonical UTC form: seconds precision when whole, else microseconds."""
    dt = to_datetime(micros)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)(?:\.(?P<f>\d{1,6}))?S)?)?"
)


def parse_duration(text: str) -> int:
    """ISO 8601 duration in weeks, days, hours, minutes, seconds -> micros.

    P1D is exactly 24 hours (spec 10.17); months and years have no fixed
    length and are refused.
    """
    if not isinstance(text, str):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    if re.fullmatch(r"P.*?(\d+[YM]).*", text.split("T", maxsplit=1)[0]):
        raise ValueError(f"durations in months or years are refused: {text!r}")
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items() if k != "f"}
    fraction = (match.group("f") or "").ljust(6, "0")
    return (
        parts["w"] * 7 * MICROS_PER_DAY
        + parts["d"] * MICROS_PER_DAY
        + parts["h"] * MICROS_PER_HOUR
        + parts["m"] * MICROS_PER_MINUTE
        + parts["s"] * MICROS_PER_SECOND
        + int(fraction)
    )


def format_duration(micros: int) -> str:
    """Canonical ISO 8601 form in hours, minutes and seconds."""
    if micros == 0:
        return "PT0S"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    hours, rest = divmod(micros, MICROS_PER_HOUR)
    minutes, rest = divmod(rest, MICROS_PER_MINUTE)
    seconds, frac = divmod(rest, MICROS_PER_SECOND)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if seconds or frac:
        out += f"{seconds}.{frac:06d}S" if frac else f"{seconds}S"
    return sign + out
