"""LedgerService write contract on SQLite, PostgreSQL and the in-memory store:
the worked herts scenario appended event by event, atomic batches, real
concurrent writers, and the permission rules.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.adapters.eventstore import EventStore as SqlEventStore
from ledger.adapters.eventstore import open_store
from ledger.adapters.memory_store import MemoryEventStore
from ledger.application.ledger_service import LedgerService
from ledger.domain import events as ev
from ledger.domain.access import LOCAL_ADMIN, Principal
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import (
    AlreadyExists,
    DomainError,
    NotFound,
    PermissionDenied,
    TimelineViolation,
)
from ledger.domain.events import AppendResult
from ledger.domain.instants import parse_instant
from ledger.domain.streams import incident_stream
from ledger.domain.terms_parsing import parse_terms
from ledger.domain.validation import check_incident_timeline
from tests.support.histories import (
    AGREEMENT,
    assert_gap_free,
    incident_event,
    opened,
    register_herts,
    register_other,
    scenario,
)

Store = SqlEventStore | MemoryEventStore


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def service(store: Store, clock: Callable[[], int]) -> LedgerService:
    return LedgerService(store, clock)


# -- the worked scenario ----------------------------------------------------------

def test_herts_scenario_event_by_event(service: LedgerService, store: Store) -> None:
    data = scenario()
    assert register_herts(service) == AppendResult(f"register:{AGREEMENT}", 1, False)
    outcomes: dict[int, AppendResult | DomainError] = {}
    for index, raw in enumerate(data["events"]):
        event = event_from_dict(raw, f"events[{index}]")
        try:
            (outcomes[index],) = service.append(LOCAL_ADMIN, [event])
        except DomainError as exc:
            outcomes[index] = exc

    rejected = {i: o for i, o in outcomes.items() if isinstance(o, DomainError)}
    duplicates = {i: o for i, o in outcomes.items() if isinstance(o, AppendResult) and o.duplicate}
    assert sorted(rejected) == [34, 45], {i: repr(e) for i, e in rejected.items()}
    assert isinstance(rejected[34], TimelineViolation)
    assert rejected[34].rule == "not_paused"
    assert isinstance(rejected[45], TimelineViolation)
    assert rejected[45].rule == "not_custody_holder"
    assert sorted(duplicates) == [8]
    # Index 8 repeats index 5: it answers with the original position.
    assert data["events"][8] == data["events"][5]
    original = outcomes[5]
    assert isinstance(original, AppendResult) and not original.duplicate
    assert duplicates[8] == AppendResult(original.event_id, original.position, True)

    # Every other event got the next position, in file order, after the agreement.
    stored_indexes = [i for i in range(len(data["events"])) if i not in (8, 34, 45)]
    assert len(stored_indexes) == 111
    assert [outcomes[i].position for i in stored_indexes] == list(range(2, 113))  # type: ignore[union-attr]

    log = assert_gap_free(store)
    assert len(log) == 112
    assert log[0].type == "agreement_registered"
    assert sum(e.type != "agreement_registered" for e in log) == 111
    for event, index in zip(log[1:], stored_indexes, strict=True):
        raw = data["events"][index]
        assert (event.event_id, event.type, event.actor) == (raw["event_id"], raw["type"], raw["actor"])
        assert event.submitted_by == LOCAL_ADMIN.name
        assert event.agreement_id == AGREEMENT
        assert event.recorded_at == parse_instant("2026-11-05T00:00:00Z")
    assert store.lookup_event_ids([(AGREEMENT, data["events"][i]["event_id"]) for i in (34, 45)]) == {}

    # The reads agree, and every stored incident is valid as a whole.
    assert service.agreement_ids(LOCAL_ADMIN) == [AGREEMENT]
    incidents = service.incident_ids(LOCAL_ADMIN, AGREEMENT)
    assert incidents == sorted({raw["incident_id"] for raw in data["events"] if raw.get("incident_id")})
    history = service.agreement(AGREEMENT)
    for incident in incidents:
        events = service.incident_events(LOCAL_ADMIN, incident)
        check_incident_timeline(history, events)
    if isinstance(store, MemoryEventStore):
        return  # nothing to reopen
    # A fresh service over a fresh store sees the same thing.
    reopened = open_store(store.url)
    again = LedgerService(reopened, service.clock)
    try:
        assert [e.event_id for e in again.incident_events(LOCAL_ADMIN, "INC-1010")] == [
            e.event_id for e in service.incident_events(LOCAL_ADMIN, "INC-1010")]
        (dup,) = again.append(LOCAL_ADMIN, [event_from_dict(data["events"][0])])
        assert dup == AppendResult(data["events"][0]["event_id"], 2, True)
    finally:
        reopened.close()


# -- batches ------------------------------------------------------------------

def test_batch_with_one_invalid_event_stores_nothing(service: LedgerService, store: Store) -> None:
    register_herts(service)
    service.append(LOCAL_ADMIN, [opened("o-1", "INC-1")])
    before = store.max_position()
    batch = [
        incident_event("r-1", "INC-1", "responded", "2026-10-10T09:10:00Z", "hp"),
        opened("o-2", "INC-2"),  # another stream in the same batch
        incident_event("p-1", "INC-1", "clock_paused", "2026-10-10T09:20:00Z", "herts"),
        incident_event("c-1", "INC-2", "clock_resumed", "2026-10-10T09:30:00Z", "herts"),  # not paused
        incident_event("r-2", "INC-2", "responded", "2026-10-10T09:40:00Z", "hp"),
    ]
    with pytest.raises(TimelineViolation) as info:
        service.append(LOCAL_ADMIN, batch)
    assert info.value.rule == "not_paused"
    assert info.value.index == 3
    assert store.max_position() == before
    assert store.lookup_event_ids([(e.agreement_id or AGREEMENT, e.event_id) for e in batch]) == {}
    assert store.load_stream(incident_stream(AGREEMENT, "INC-2")) == []
    assert [e.event_id for e in store.load_stream(incident_stream(AGREEMENT, "INC-1"))] == ["o-1"]
    assert service.incident_ids(LOCAL_ADMIN, AGREEMENT) == ["INC-1"]
    # The service's cache was not polluted: the valid part appends cleanly.
    results = service.append(LOCAL_ADMIN, batch[:3])
    assert [r.event_id for r in results] == ["r-1", "o-2", "p-1"]
    assert sorted(r.position for r in results) == [before + 1, before + 2, before + 3]
    assert_gap_free(store)


def test_batch_positions_follow_request_order(service: LedgerService, store: Store) -> None:
    register_herts(service)
    batch = [
        opened("o-1", "INC-1"),
        opened("o-2", "INC-2"),
        incident_event("r-1", "INC-1", "responded", "2026-10-10T09:10:00Z", "hp"),
    ]
    results = service.append(LOCAL_ADMIN, batch)
    # The cut "knowing the first two events" must not contain the third.
    cut = max(r.position for r in results[:2])
    assert [e.event_id for e in store.read_log(0, upto=cut)][1:] == ["o-1", "o-2"]
    assert [r.position for r in results] == [2, 3, 4]


def test_batch_within_itself_is_validated_in_order(service: LedgerService, store: Store) -> None:
    register_herts(service)
    batch = [
        opened("o-1", "INC-1"),
        incident_event("p-1", "INC-1", "clock_paused", "2026-10-10T09:20:00Z", "herts"),
        incident_event("p-2", "INC-1", "clock_paused", "2026-10-10T09:30:00Z", "herts"),
    ]
    with pytest.raises(TimelineViolation) as info:
        service.append(LOCAL_ADMIN, batch)
    assert (info.value.rule, info.value.index) == ("already_paused", 2)
    assert store.max_position() == 1


def test_changed_content_under_a_stored_event_id_is_refused(service: LedgerService,
                                                            store: Store) -> None:
    register_herts(service)
    service.append(LOCAL_ADMIN, [opened("o-1", "INC-1")])
    before = store.read_log_raw(0, 100)
    with pytest.raises(AlreadyExists):
        service.append(LOCAL_ADMIN, [opened("o-1", "INC-1", custody="bt")])
    with pytest.raises(AlreadyExists):
        service.append(LOCAL_ADMIN, [opened("o-1", "INC-9")])
    assert store.read_log_raw(0, 100) == before
    # Same content is an idempotent no-op, even inside a larger batch.
    results = service.append(LOCAL_ADMIN, [
        opened("o-1", "INC-1"),
        incident_event("r-1", "INC-1", "responded", "2026-10-10T09:10:00Z", "hp"),
    ])
    assert results == [AppendResult("o-1", 2, True), AppendResult("r-1", 3, False)]


# -- permissions ----------------------------------------------------------------

AUDITOR = Principal(name="auditor-1", org="audit-office", role="auditor")
BT = Principal(name="bt-ops", org="bt", role="provider")
HERTS = Principal(name="herts-desk", org="herts", role="customer")
GLOBEX = Principal(name="globex-ops", org="globex", role="provider")


@pytest.fixture
def parties(service: LedgerService) -> LedgerService:
    register_herts(service)
    register_other(service)
    service.append(LOCAL_ADMIN, [opened("o-1", "INC-1", custody="bt")])
    return service


def test_auditor_cannot_append(parties: LedgerService, store: Store) -> None:
    before = store.max_position()
    with pytest.raises(PermissionDenied):
        parties.append(AUDITOR, [incident_event("r-1", "INC-1", "responded",
                                                "2026-10-10T09:10:00Z", "bt")])
    with pytest.raises(PermissionDenied):
        parties.append(AUDITOR, [incident_event("r-1", "INC-1", "responded",
                                                "2026-10-10T09:10:00Z", "")])
    with pytest.raises(PermissionDenied):
        parties.register_agreement(AUDITOR, "x", "x", 0, parse_terms(scenario()["agreements"][0]))
    assert store.max_position() == before
    # Auditors read everything.
    assert parties.agreement_ids(AUDITOR) == ["acme-desk", AGREEMENT]
    assert [e.event_id for e in parties.incident_events(AUDITOR, "INC-1")] == ["o-1"]


def test_provider_cannot_act_for_another_org(parties: LedgerService, store: Store) -> None:
    before = store.max_position()
    with pytest.raises(PermissionDenied):
        parties.append(BT, [incident_event("r-1", "INC-1", "responded",
                                           "2026-10-10T09:10:00Z", "hp")])
    with pytest.raises(PermissionDenied):
        # The whole batch is refused even though its first event is fine.
        parties.append(BT, [
            incident_event("r-1", "INC-1", "responded", "2026-10-10T09:10:00Z", "bt"),
            incident_event("p-1", "INC-1", "clock_paused", "2026-10-10T09:20:00Z", "herts"),
        ])
    assert store.max_position() == before
    # For itself (named or implied) it may append; the actor is its org.
    (r1,) = parties.append(BT, [incident_event("r-1", "INC-1", "responded",
                                               "2026-10-10T09:10:00Z", "bt")])
    (r2,) = parties.append(BT, [incident_event("r-2", "INC-1", "responded",
                                               "2026-10-10T09:15:00Z", "")])
    stored = {e.event_id: e for e in parties.incident_events(BT, "INC-1")}
    assert (stored["r-1"].actor, stored["r-2"].actor) == ("bt", "bt")
    assert stored["r-2"].submitted_by == BT.name
    assert (r1.position, r2.position) == (before + 1, before + 2)


@pytest.mark.parametrize("attempt", ["open", "respond", "read"])
def test_foreign_provider_gets_not_found_for_the_agreement(
    parties: LedgerService, store: Store, attempt: str
) -> None:
    before = store.max_position()
    with pytest.raises(NotFound) as info:
        if attempt == "open":
            parties.append(GLOBEX, [incident_event(
                "o-g", "INC-G", "opened", "2026-10-10T09:00:00Z", "globex", agreement=AGREEMENT,
                service="desktop", priority="P2", custody="bt")])
        elif attempt == "respond":
            parties.append(GLOBEX, [incident_event("r-g", "INC-1", "responded",
                                                   "2026-10-10T09:10:00Z", "globex")])
        else:
            parties.visible_agreement(GLOBEX, AGREEMENT)
    # Reading 28: an agreement it cannot see is answered as one that does not
    # exist; an incident not named with its agreement is looked up among the
    # globex's own agreements, where it does not exist.
    expected = ("incident", "INC-1") if attempt == "respond" else ("agreement", AGREEMENT)
    assert (info.value.kind, info.value.ident) == expected
    assert store.max_position() == before
    # Its existence is not disclosed elsewhere either.
    assert parties.agreement_ids(GLOBEX) == ["acme-desk"]
    with pytest.raises(NotFound):
        parties.incident_events(GLOBEX, "INC-1")
    with pytest.raises(NotFound):
        parties.incident_ids(GLOBEX, AGREEMENT)
    assert parties.incident_ids(GLOBEX, None) == []
    # A party of the agreement does see it.
    assert parties.agreement_ids(HERTS) == [AGREEMENT]
    assert parties.incident_ids(HERTS, None) == ["INC-1"]


def test_validate_only_checks_and_answers_like_an_append_and_stores_nothing(
        service: LedgerService, store: Store) -> None:
    register_herts(service)
    events = [event_from_dict(raw, f"events[{i}]") for i, raw in enumerate(scenario()["events"][:12])]
    before = store.max_position()
    checked = service.validate(LOCAL_ADMIN, events)
    assert store.max_position() == before
    stored = service.append(LOCAL_ADMIN, events)
    assert [(r.event_id, r.duplicate) for r in checked] == [(r.event_id, r.duplicate) for r in stored]
    assert {r.position for r in checked} == {0}
    again = service.validate(LOCAL_ADMIN, events)
    # a re-sent batch: every event a duplicate, answered with its position
    assert [(r.event_id, r.position) for r in again] == [(r.event_id, r.position) for r in stored]
    assert all(r.duplicate for r in again)
    assert store.max_position() == before + sum(not r.duplicate for r in stored)
    handoff = ev.LedgerEvent("x-handoff", "", events[0].incident_id, events[-1].occurred_at, "nobody-here",
                             ev.HandedOff(to="bt"))
    with pytest.raises(DomainError) as refused:
        service.validate(LOCAL_ADMIN, [handoff])
    with pytest.raises(type(refused.value)) as real:
        service.append(LOCAL_ADMIN, [handoff])
    assert str(real.value) == str(refused.value)
    assert store.max_position() == before + sum(not r.duplicate for r in stored)
