"""How figures read for people (tables, statements, the console): the one
place exact report values become display text. Display only: the exact
values stay in the JSON report."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def money(units: int | str, currency: str) -> str:
    """Minor units as "GBP 1,234.56"."""
    value = int(units)
    sign = "-" if value < 0 else ""
    whole, minor = divmod(abs(value), 100)
    return f"{sign}{currency} {whole:,}.{minor:02d}"


def pct(ratio: Decimal | str | None) -> str:
    """A 12-decimal ratio as a percentage with 3 decimals, or n/a."""
    if ratio in (None, ""):
        return "n/a"
    value = (Decimal(str(ratio)) * 100).quantize(Decimal("0.001"), ROUND_HALF_EVEN)
    return f"{value}%"


def duration(seconds: str | None) -> str:
    """Seconds (6 decimals) as h:mm:ss, rounded down to the second."""
    if seconds in (None, ""):
        return ""
    total = int(Decimal(str(seconds)))
    sign = "-" if total < 0 else ""
    hours, rest = divmod(abs(total), 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"
