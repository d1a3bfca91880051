"""Exact money arithmetic on integer minor units (spec 8, 10.15).

Every intermediate value is a Fraction so a credit can be recomputed by hand
from the same inputs; rounding happens once, at the minor unit, half-even.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

__all__ = ["largest_remainder", "percent_of", "round_half_even"]


def round_half_even(x: Fraction) -> int:
    """Nearest integer; exact halves go to the even neighbour."""
    floor = x.numerator // x.denominator
    rest = x - floor
    half = Fraction(1, 2)
    if rest > half or (rest == half and floor % 2 == 1):
        return floor + 1
    return floor


def percent_of(amount_minor: int, percent: Decimal) -> int:
    """amount * percent / 100, rounded half-even to the minor unit."""
    if not percent.is_finite():
        raise ValueError(f"percent must be finite, got {percent}")
    # Fraction(Decimal) is exact, unlike going through float.
    return round_half_even(Fraction(amount_minor) * Fraction(percent) / 100)


def largest_remainder(total: int, weights: Mapping[str, Fraction]) -> dict[str, int]:
    """Split `total` minor units in proportion to `weights`, exactly.

    Each key gets the floor of its exact share; the units left over (fewer
    than the number of keys) go one each to the largest fractional parts,
    ties to the smallest key in string order.  The parts sum to `total`.
    """
    if total < 0:
        raise ValueError(f"cannot split a negative total: {total}")
    exact = {key: Fraction(w) for key, w in weights.items()}
    for key, w in exact.items():
        if w < 0:
            raise ValueError(f"weight of {key!r} is negative: {w}")
    whole = sum(exact.values(), Fraction(0))
    if whole == 0:
        raise ValueError("cannot split by weights that are all zero")
    parts: dict[str, int] = {}
    remainders: list[tuple[Fraction, str]] = []
    for key, w in exact.items():
        share = total * w / whole
        floor = share.numerator // share.denominator
        parts[key] = floor
        remainders.append((share - floor, key))
    left = total - sum(parts.values())
    # Largest remainder first, then smallest key: sort on (-remainder, key).
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, key in remainders[:left]:
        parts[key] += 1
    return parts
