"""ListIncidents from the SLA read model lists exactly what the incident
streams give, page after page, for every filter, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.adapters.eventstore import EventStore
from ledger.application.incident_list import IncidentListing, IncidentQuery
from ledger.application.incidents import IncidentSummary
from ledger.application.ledger_service import LedgerService
from ledger.domain.access import LOCAL_ADMIN, Principal
from ledger.domain.errors import NotFound
from ledger.domain.instants import parse_instant
from projections.runner import ProjectionRunner
from projections.sla_projection import SlaProjection
from projections.sla_read_model import SlaReadModel
from tests.support.histories import AGREEMENT, load, register_herts, register_other

QUERIES = [
    IncidentQuery(),
    IncidentQuery(agreement_id=AGREEMENT, size=7),
    IncidentQuery(status="open", size=3),
    IncidentQuery(status="voided"),
    IncidentQuery(status="resolved", custody="hp", size=2),
    IncidentQuery(opened_from=parse_instant("2026-10-10T00:00:00Z"),
                  opened_to=parse_instant("2026-10-20T00:00:00Z"), size=4),
]


def every_page(listing: IncidentListing, principal: Principal,
               query: IncidentQuery) -> list[IncidentSummary]:
    out: list[IncidentSummary] = []
    after = ""
    for _ in range(1000):
        page = listing.page(principal, _with_after(query, after))
        assert len(page.incidents) <= query.size
        out += page.incidents
        if page.next_after is None:
            return out
        after = page.next_after
    raise AssertionError("paging did not end")


def _with_after(query: IncidentQuery, after: str) -> IncidentQuery:
    return IncidentQuery(query.agreement_id, query.status, query.custody, query.opened_from,
                         query.opened_to, after, query.size)


@pytest.fixture
def loaded(store: EventStore, clock: Callable[[], int]) -> LedgerService:
    service = LedgerService(store, clock)
    register_herts(service)
    register_other(service)
    load(service, ProjectionRunner(store, [SlaProjection(store)]), seed=61, incidents=30)
    return service


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_model_and_streams_list_the_same(loaded: LedgerService, store: EventStore,
                                         query: IncidentQuery) -> None:
    from_model = every_page(IncidentListing(loaded, SlaReadModel(store)), LOCAL_ADMIN, query)
    from_streams = every_page(IncidentListing(loaded), LOCAL_ADMIN, query)
    assert from_model == from_streams
    if query == IncidentQuery():
        assert len(from_model) >= 25
        assert {s.status for s in from_model} >= {"open", "resolved", "voided"}


def test_a_party_lists_only_its_agreements(loaded: LedgerService, store: EventStore) -> None:
    listing = IncidentListing(loaded, SlaReadModel(store))
    outsider = Principal(name="globex-desk", org="globex", role="provider")
    assert every_page(listing, outsider, IncidentQuery()) == []
    with pytest.raises(NotFound):
        listing.page(outsider, IncidentQuery(agreement_id=AGREEMENT))
