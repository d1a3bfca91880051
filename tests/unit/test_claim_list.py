"""The claim list (ListClaims, `sla-ledger disputes`, the open-claims metric)
on the in-memory store: claims about to be deemed accepted come soonest
first by the instant, also within one second, where the ISO text puts
"...:00.5Z" before "...:00Z"."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.adapters.memory_store import MemoryEventStore
from ledger.application.claims import ClaimQuery, ClaimService
from ledger.application.ledger_service import LedgerService
from ledger.application.reports import ReportService
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import MICROS_PER_DAY, MICROS_PER_SECOND, parse_instant
from ledger.domain.terms_parsing import parse_terms
from ledger.observability.sla_snapshot import claim_counts

SCENARIO = Path(__file__).resolve().parents[2] / "ledger" / "demo" / "herts-2026-10.json"
T = parse_instant("2026-11-05T00:00:00Z")
CLAIMED = "2026-11-02T09:00:00"


def _claims_half_a_second_apart() -> ClaimService:
    store = MemoryEventStore()
    service = LedgerService(store, lambda: T)
    (raw,) = json.loads(SCENARIO.read_text(encoding="utf-8"))["agreements"]
    service.register_agreement(LOCAL_ADMIN, "register", raw["id"],
                               parse_instant(raw["effective_from"]), parse_terms(raw))
    # INC-A's claim is made half a second after INC-B's: deemed half a second later.
    for incident, claimed_at in (("INC-A", CLAIMED + ".5Z"), ("INC-B", CLAIMED + "Z")):
        events = [
            {"event_id": f"open-{incident}", "incident_id": incident, "type": "opened",
             "occurred_at": "2026-11-01T08:00:00Z", "actor": "herts", "agreement": raw["id"],
             "service": "desktop", "priority": "P2", "custody": "hp"},
            {"event_id": f"claim-{incident}", "incident_id": incident,
             "type": "priority_changed", "occurred_at": claimed_at, "actor": "hp",
             "priority": "P3"},
        ]
        service.append(LOCAL_ADMIN, [event_from_dict(e) for e in events])
    return ClaimService(ReportService(store, lambda: T))


def test_claims_deemed_soonest_first_by_the_instant_within_one_second() -> None:
    claims = _claims_half_a_second_apart()
    soon = claims.claims(LOCAL_ADMIN, ClaimQuery(deemed_within=11 * MICROS_PER_DAY), T)
    deemed = parse_instant("2026-11-12T09:00:00Z")
    assert [(c.event_id, c.deemed_at) for c in soon] == [
        ("claim-INC-B", deemed), ("claim-INC-A", deemed + MICROS_PER_SECOND // 2)]
    # Listed by incident otherwise.
    listed = claims.claims(LOCAL_ADMIN, ClaimQuery(), T)
    assert [c.event_id for c in listed] == ["claim-INC-A", "claim-INC-B"]
    # The metric's first deemed instant is the earlier one, from the same values.
    open_by_org, next_deemed = claim_counts(listed)
    assert open_by_org == {"herts": 2}
    assert next_deemed == {"herts": deemed / MICROS_PER_SECOND}
