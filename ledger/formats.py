"""How figures read for people (tables, statements, the console): the one
place exact report values become display text, and the one table layout of
the command line. Display only: the exact values stay in the JSON report."""

from __future__ import annotations

import shutil
import sys
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


def table(rows: list[list[str]], header: list[str], width: int | None = None, *,
          cut_to_terminal: bool = True) -> str:
    """Columns sized to their content. On a terminal the last column is cut to
    its width so rows stay one line each; piped output is never cut, because a
    script needs every id whole. A table whose last column is what the reader
    must copy (a claim's event id, to answer it) passes cut_to_terminal=False."""
    if width is None and cut_to_terminal and sys.stdout.isatty():
        width = shutil.get_terminal_size((100, 24)).columns
    sizes = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * s for s in sizes], *rows]:
        line = "  ".join(cell.ljust(size) for cell, size in zip(row, sizes, strict=True)).rstrip()
        lines.append(line if width is None or len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)
