"""Service credits of a period (spec 8, readings 10.14 and 10.15).

Order of operations, each step exact and rounded at most once:
1. each level not achieved earns credit_percent of the charge, half-even;
2. the cap is at_risk_percent of the charge, half-even;
3. only if the sum of (1) is strictly greater than (2), the cap is split
   between the levels by largest remainder in proportion to their rounded
   credits (ties to the smallest level id);
4. each level's credit is split between providers by its period shares,
   again by largest remainder (ties to the smallest org id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ledger.domain.agreements import AgreementTerms
from ledger.domain.money import largest_remainder, percent_of


@dataclass(frozen=True, slots=True)
class LevelCreditInput:
    level_id: str
    achieved: bool
    # Period shares by org (need not be normalised; zero entries ignored).
    shares: Mapping[str, Fraction]


@dataclass(frozen=True, slots=True)
class LevelCredit:
    level_id: str
    uncapped: int
    credit: int
    # Every provider of the period terms, plus any other org with a share.
    split: dict[str, int]


@dataclass(frozen=True, slots=True)
class PeriodCredits:
    currency: str
    levels: tuple[LevelCredit, ...]
    uncapped_total: int
    cap: int
    total: int
    by_provider: dict[str, int]

    def level(self, level_id: str) -> LevelCredit:
        for item in self.levels:
            if item.level_id == level_id:
                return item
        raise KeyError(level_id)


def split_between_providers(
    credit: int, shares: Mapping[str, Fraction], providers: Sequence[str]
) -> dict[str, int]:
    """A level's credit apportioned by its period shares; every provider is
    listed, with 0 when it has no share."""
    orgs = sorted(set(providers) | {org for org, s in shares.items() if s > 0})
    out = dict.fromkeys(orgs, 0)
    if credit == 0:
        return out
    weights = {org: Fraction(s) for org, s in shares.items() if s > 0}
    if not weights:
        # Unreachable under the rules (a level is only missed through a
        # missed incident or downtime, and both yield shares); splitting
        # evenly beats failing the whole report.
        weights = {org: Fraction(1) for org in orgs}
    out.update(largest_remainder(credit, weights))
    return out


def compute_credits(terms: AgreementTerms, levels: Sequence[LevelCreditInput]) -> PeriodCredits:
    """Credits for the levels of `terms` (the terms at the period start)."""
    charge = terms.monthly_charge.minor_units
    percent = {sl.id: sl.credit_percent for sl in terms.service_levels}
    uncapped = {
        item.level_id: 0 if item.achieved else percent_of(charge, percent[item.level_id])
        for item in levels
    }
    uncapped_total = sum(uncapped.values())
    cap = percent_of(charge, terms.at_risk_percent)
    capped = dict(uncapped)
    if uncapped_total > cap:
        weights = {lid: Fraction(u) for lid, u in uncapped.items() if u > 0}
        capped = dict.fromkeys(uncapped, 0)
        capped.update(largest_remainder(cap, weights))
    results: list[LevelCredit] = []
    by_provider: dict[str, int] = dict.fromkeys(sorted(terms.providers), 0)
    for item in levels:
        split = split_between_providers(capped[item.level_id], item.shares, terms.providers)
        for org, units in split.items():
            by_provider[org] = by_provider.get(org, 0) + units
        results.append(LevelCredit(item.level_id, uncapped[item.level_id],
                                   capped[item.level_id], split))
    return PeriodCredits(
        currency=terms.monthly_charge.currency,
        levels=tuple(results),
        uncapped_total=uncapped_total,
        cap=cap,
        total=sum(capped.values()),
        by_provider=dict(sorted(by_provider.items())),
    )
