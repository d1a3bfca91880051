"""Listings when one incident id stands in two agreements (reading 28): every
(agreement, incident) exactly once across pages, from the read model and from
the streams, and each party sees only its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.application.incident_list import IncidentListing, IncidentQuery
from ledger.domain.access import Principal
from ledger.v1 import incidents_pb2
from tests.e2e.faults.harness import AGREEMENT_A, AGREEMENT_B, two_agreements
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e
AUDITOR = Principal(name="auditor", org="watchdog", role="auditor")


def _all_pages(listing: IncidentListing, principal: Principal, size: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    after = ""
    while True:
        page = listing.page(principal, IncidentQuery(after=after, size=size))
        seen += [(s.agreement_id, s.incident_id) for s in page.incidents]
        if page.next_after is None:
            return seen
        after = page.next_after


def test_pages_hold_every_incident_of_both_agreements_once(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    with two_agreements(database_url, clock, tmp_path) as fixture:
        ledger = fixture.ledger
        a_ids = ledger.service.incident_ids(AUDITOR, AGREEMENT_A)
        assert a_ids == ledger.service.incident_ids(AUDITOR, AGREEMENT_B)  # the same ids
        expected = sorted([(AGREEMENT_A, i) for i in a_ids] + [(AGREEMENT_B, i) for i in a_ids])
        for listing in (ledger.listing, IncidentListing(ledger.service)):  # model, streams
            for size in (1, 3, 1000):
                seen = _all_pages(listing, AUDITOR, size)
                assert sorted(seen) == expected and len(seen) == len(set(seen)), (listing, size)
        with fixture.client("b-provider") as client:
            listed = client.incidents.ListIncidents(
                incidents_pb2.ListIncidentsRequest(page_size=1000), metadata=client.metadata)
            assert {i.agreement_id for i in listed.incidents} == {AGREEMENT_B}
