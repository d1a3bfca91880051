"""A claim as the claim list gives it (`sla-ledger disputes`, ListClaims,
the open-claims metric): the claim at an evaluation instant with the
agreement and period it belongs to, and its one JSON rendering.

Instants are microseconds, so the list orders by the instant: ISO text
puts "...:00.5Z" before "...:00Z" ('.' sorts before 'Z').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.domain.claims import ClaimState
from ledger.domain.instants import format_instant


@dataclass(frozen=True, slots=True)
class ListedClaim:
    agreement_id: str
    incident_id: str
    # YYYY-MM of the incident's opening, in the agreement's time zone.
    period: str
    event_id: str
    type: str
    claimed_by: str
    claimed_at: int
    # What is claimed, by field, sorted by name.
    claim: tuple[tuple[str, str], ...]
    awaiting: tuple[str, ...]
    accepted_by: tuple[str, ...]
    disputed_by: tuple[str, ...]
    # "open", "disputed", "awaiting" (no dispute window) or "in_effect".
    state: str
    # Deemed accepted then unless disputed; None once disputed or accepted,
    # and without a window (11.7).
    deemed_at: int | None

    @classmethod
    def of(cls, agreement_id: str, incident_id: str, period: str,
           claim: ClaimState) -> ListedClaim:
        return cls(agreement_id, incident_id, period, claim.event_id, claim.type,
                   claim.claimed_by, claim.occurred_at, tuple(sorted(claim.claim)),
                   tuple(claim.awaiting), tuple(claim.accepted_by), tuple(claim.disputed_by),
                   claim.state, claim.deemed_at)


def by_deemed_instant(claim: ListedClaim) -> tuple[int, str, str]:
    """Soonest deemed first (claims without a deemed instant last)."""
    deemed = 2**63 if claim.deemed_at is None else claim.deemed_at
    return deemed, claim.agreement_id, claim.incident_id


def by_incident(claim: ListedClaim) -> tuple[str, str, int]:
    return claim.agreement_id, claim.incident_id, claim.claimed_at


def listed_claim_dict(claim: ListedClaim) -> dict[str, Any]:
    """A claim as JSON (`sla-ledger disputes --format json`): the dispute
    fields of a report, and more."""
    return {
        "agreement_id": claim.agreement_id, "incident_id": claim.incident_id,
        "period": claim.period, "event_id": claim.event_id, "type": claim.type,
        "claimed_by": claim.claimed_by, "claimed_at": format_instant(claim.claimed_at),
        "claim": dict(claim.claim), "awaiting": list(claim.awaiting),
        "accepted_by": list(claim.accepted_by), "disputed_by": list(claim.disputed_by),
        "state": claim.state,
        "deemed_at": None if claim.deemed_at is None else format_instant(claim.deemed_at),
    }
