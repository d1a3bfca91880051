"""Exact money: half-even rounding, percents, largest-remainder splits."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.money import largest_remainder, percent_of, round_half_even


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (Fraction(5, 2), 2),
        (Fraction(7, 2), 4),
        (Fraction(-5, 2), -2),
        (Fraction(-7, 2), -4),
        (Fraction(1, 2), 0),
        (Fraction(3, 2), 2),
        (Fraction(249, 100), 2),
        (Fraction(251, 100), 3),
        (Fraction(-251, 100), -3),
        (Fraction(4), 4),
        (Fraction(0), 0),
    ],
)
def test_round_half_even(x: Fraction, expected: int) -> None:
    assert round_half_even(x) == expected


@given(st.fractions())
def test_round_half_even_is_nearest(x: Fraction) -> None:
    n = round_half_even(x)
    assert abs(x - n) <= Fraction(1, 2)
    if abs(x - n) == Fraction(1, 2):
        assert n % 2 == 0


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (994_047_619, "12", 119_285_714),  # 119285714.28
        (994_047_619, "4", 39_761_905),  # 39761904.76
        (994_047_619, "1.5", 14_910_714),  # 14910714.285
        (994_047_619, "5", 49_702_381),  # 49702380.95
        (994_047_619, "2", 19_880_952),  # 19880952.38
        (250, "1", 2),  # 2.5 -> 2 (even)
        (350, "1", 4),  # 3.5 -> 4 (even)
        (50, "1", 0),  # 0.5 -> 0
        (150, "1", 2),  # 1.5 -> 2
        (125, "10", 12),  # 12.5 -> 12
        (135, "10", 14),  # 13.5 -> 14
        (1, "50", 0),  # 0.5 -> 0
        (3, "50", 2),  # 1.5 -> 2
        (10_000, "0.005", 0),  # 0.5 -> 0
        (30_000, "0.005", 2),  # 1.5 -> 2
        (12_345, "0", 0),
        (12_345, "100", 12_345),
    ],
)
def test_percent_of(amount: int, percent: str, expected: int) -> None:
    assert percent_of(amount, Decimal(percent)) == expected


def test_percent_of_refuses_non_finite() -> None:
    with pytest.raises(ValueError):
        percent_of(100, Decimal("NaN"))
    with pytest.raises(ValueError):
        percent_of(100, Decimal("Infinity"))


@given(st.integers(0, 10**12), st.decimals(0, 100, places=4, allow_nan=False))
def test_percent_of_is_nearest_minor_unit(amount: int, percent: Decimal) -> None:
    exact = Fraction(amount) * Fraction(percent) / 100
    assert abs(exact - percent_of(amount, percent)) <= Fraction(1, 2)


def test_spec_cap_example() -> None:
    credits = {
        "p1-resolution": 39_761_905,
        "p2-response": 14_910_714,
        "p2-resolution": 19_880_952,
        "network-availability": 49_702_381,
    }
    cap = percent_of(994_047_619, Decimal("12"))
    assert cap == 119_285_714
    split = largest_remainder(cap, {k: Fraction(v) for k, v in credits.items()})
    assert split == {
        "p1-resolution": 38_171_429,
        "p2-response": 14_314_285,
        "p2-resolution": 19_085_714,
        "network-availability": 47_714_286,
    }
    assert sum(split.values()) == cap


def test_spec_apportionment_example() -> None:
    # Equal remainders (0.5 each): the extra unit goes to the smaller id.
    assert largest_remainder(14_314_285, {"hp": Fraction(1), "bt": Fraction(1)}) == {
        "bt": 7_157_143,
        "hp": 7_157_142,
    }


def test_ties_go_to_smallest_key_in_string_order() -> None:
    # "B" < "a" < "b" in string order; three equal shares of 2 leave 2 units.
    weights = {"b": Fraction(1), "a": Fraction(1), "B": Fraction(1)}
    assert largest_remainder(2, weights) == {"B": 1, "a": 1, "b": 0}


def test_larger_remainder_beats_smaller_key() -> None:
    # shares: a = 10/3 (rem 1/3), b = 20/3 (rem 2/3); one unit left, to b.
    assert largest_remainder(10, {"a": Fraction(1), "b": Fraction(2)}) == {"a": 3, "b": 7}


def test_zero_weights_get_nothing_and_zero_total() -> None:
    assert largest_remainder(7, {"a": Fraction(0), "b": Fraction(3)}) == {"a": 0, "b": 7}
    assert largest_remainder(0, {"a": Fraction(1), "b": Fraction(3)}) == {"a": 0, "b": 0}


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        (10, {}),
        (10, {"a": Fraction(0), "b": Fraction(0)}),
        (10, {"a": Fraction(-1), "b": Fraction(2)}),
        (-1, {"a": Fraction(1)}),
    ],
)
def test_largest_remainder_refuses(total: int, weights: dict[str, Fraction]) -> None:
    with pytest.raises(ValueError):
        largest_remainder(total, weights)


weights_maps = st.dictionaries(
    st.text(min_size=1, max_size=4),
    st.fractions(min_value=0, max_value=10**6, max_denominator=1000),
    min_size=1,
    max_size=8,
).filter(lambda w: sum(w.values()) > 0)


@given(st.integers(0, 10**10), weights_maps)
def test_largest_remainder_properties(total: int, weights: dict[str, Fraction]) -> None:
    parts = largest_remainder(total, weights)
    assert set(parts) == set(weights)
    assert sum(parts.values()) == total
    whole = sum(weights.values(), Fraction(0))
    exact = {k: total * w / whole for k, w in weights.items()}
    floors = {k: v.numerator // v.denominator for k, v in exact.items()}
    bumped = {k for k in parts if parts[k] == floors[k] + 1}
    assert all(parts[k] in (floors[k], floors[k] + 1) for k in parts)
    # Every bumped key ranks ahead of every key left at its floor.
    for won in bumped:
        for lost in set(parts) - bumped:
            rem_won, rem_lost = exact[won] - floors[won], exact[lost] - floors[lost]
            assert rem_won > rem_lost or (rem_won == rem_lost and won < lost)


@given(st.integers(0, 10**10), st.lists(st.text(min_size=1, max_size=4), min_size=1, unique=True))
def test_equal_weights_give_extras_to_smallest_keys(total: int, keys: list[str]) -> None:
    parts = largest_remainder(total, {k: Fraction(1) for k in keys})
    base, extra = divmod(total, len(keys))
    ordered = sorted(keys)
    assert [parts[k] for k in ordered] == [base + 1] * extra + [base] * (len(keys) - extra)
