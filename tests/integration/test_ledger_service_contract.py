"""LedgerService write contract on SQLite, PostgreSQL and the in-memory store:
the worked herts scenario appended event by event, atomic batches, real
concurrent writers, and the permission rules.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ledger.adapters.eventstore import EventStore as SqlEventStore
from ledger.adapters.eventstore import open_store
from ledger.adapters.memory_store import MemoryEventStore
from ledger.application.ledger_service import LedgerService
from ledger.application.ports import VersionConflict
from ledger.domain import events as ev
from ledger.domain.access import LOCAL_ADMIN, Principal
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import (
    AlreadyExists,
    Conflict,
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

SCENARIO = Path(__file__).resolve().parents[2] / "ledger" / "demo" / "herts-2026-10.json"
AGREEMENT = "herts-converged"
MINUTE = 60_000_000


def scenario() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCENARIO.read_text(encoding="utf-8"))
    return data


Store = SqlEventStore | MemoryEventStore


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def service(store: Store, clock: Callable[[], int]) -> LedgerService:
    return LedgerService(store, clock)


def register_herts(service: LedgerService) -> AppendResult:
    (raw,) = scenario()["agreements"]
    return service.register_agreement(
        LOCAL_ADMIN, f"register:{raw['id']}", raw["id"], parse_instant(raw["effective_from"]),
        parse_terms(raw, "agreements[0]"))


def register_other(service: LedgerService) -> None:
    """A second agreement with disjoint parties: acme buys from globex."""
    terms = {**scenario()["agreements"][0], "id": "acme-desk", "customer": "acme",
             "providers": ["globex"]}
    service.register_agreement(LOCAL_ADMIN, "register:acme-desk", "acme-desk",
                               parse_instant("2026-07-01T00:00:00Z"), parse_terms(terms))


def incident_event(event_id: str, incident: str, kind: str, at: str, actor: str,
                   **fields: Any) -> ev.LedgerEvent:
    raw = {"event_id": event_id, "incident_id": incident, "type": kind, "occurred_at": at,
           "actor": actor, **fields}
    return event_from_dict(raw)


def opened(event_id: str, incident: str, at: str = "2026-10-10T09:00:00Z",
           agreement: str = AGREEMENT, custody: str = "hp") -> ev.LedgerEvent:
    return incident_event(event_id, incident, "opened", at, "herts", agreement=agreement,
                          service="desktop", priority="P2", custody=custody)


def assert_gap_free(store: Store) -> list[ev.LedgerEvent]:
    log = store.read_log(0, limit=100_000)
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    assert store.max_position() == len(log)
    return log


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


# -- concurrency --------------------------------------------------------------

@dataclass
class GatedStore:
    """An EventStore whose next append, per thread, first waits for the other
    writer at a barrier: both writes are prepared against the same stream
    version, so one of them must hit a real VersionConflict."""

    inner: SqlEventStore
    barrier: threading.Barrier
    conflicts: list[str] = field(default_factory=list)
    local: threading.local = field(default_factory=threading.local)

    def gate_next_append(self) -> None:
        self.local.gated = True

    def append(self, writes: Any, recorded_at: int, expect: Any = None) -> list[int]:
        if getattr(self.local, "gated", False):
            self.local.gated = False
            self.barrier.wait(timeout=60)
        try:
            return self.inner.append(writes, recorded_at, expect)
        except VersionConflict:
            self.conflicts.append(threading.current_thread().name)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def append_retrying(service: LedgerService, principal: Principal,
                    events: list[ev.LedgerEvent]) -> list[AppendResult]:
    """What a client does on Conflict (ABORTED): retry the same batch."""
    for _ in range(50):
        try:
            return service.append(principal, events)
        except Conflict:
            continue
    raise AssertionError("still conflicting after 50 retries")


def test_concurrent_writers_to_one_incident(database_url: str, clock: Callable[[], int]) -> None:  # noqa: PLR0915  one concurrency scenario told in order
    setup = open_store(database_url)
    try:
        admin = LedgerService(setup, clock)
        register_herts(admin)
        admin.append(LOCAL_ADMIN, [opened("open", "INC-X", at="2026-10-10T00:00:00Z")])
    finally:
        setup.close()

    barrier = threading.Barrier(2)
    stores = [GatedStore(open_store(database_url), barrier) for _ in range(2)]
    services = [LedgerService(s, clock) for s in stores]
    rounds = 25
    base = parse_instant("2026-10-10T00:00:00Z")

    def at(minute: int) -> str:
        from ledger.domain.instants import format_instant

        return format_instant(base + minute * MINUTE)

    # Writer 0: responses by the provider holding custody. Writer 1: the
    # customer pausing and resuming the clock. Each series is valid however
    # the two interleave; the final resolved is contested by both.
    series: list[list[ev.LedgerEvent]] = [
        [incident_event(f"resp-{i}", "INC-X", "responded", at(10 + 3 * i), "hp")
         for i in range(rounds)],
        [e for i in range(rounds) for e in (
            incident_event(f"pause-{i}", "INC-X", "clock_paused", at(11 + 3 * i), "herts"),
            incident_event(f"resume-{i}", "INC-X", "clock_resumed", at(12 + 3 * i), "herts"),
        )],
    ]
    finals = [incident_event(f"resolved-{n}", "INC-X", "resolved", at(1000 + n), "hp")
              for n in range(2)]
    results: list[dict[str, int]] = [{}, {}]
    final_outcome: list[AppendResult | DomainError | None] = [None, None]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            service, store = services[n], stores[n]
            service.streams.get(f"incident:{AGREEMENT}/INC-X")  # both writers start from version 1
            store.gate_next_append()
            for event in series[n]:
                (result,) = append_retrying(service, LOCAL_ADMIN, [event])
                assert not result.duplicate
                results[n][result.event_id] = result.position
            barrier.wait(timeout=60)  # both series are in
            service.streams.get(f"incident:{AGREEMENT}/INC-X")
            store.gate_next_append()
            try:
                (final_outcome[n],) = append_retrying(service, LOCAL_ADMIN, [finals[n]])
            except DomainError as exc:
                final_outcome[n] = exc
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(n,), name=f"writer-{n}") for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not any(t.is_alive() for t in threads), "writers did not finish"
        assert not errors, errors
        # The gates forced at least one real conflict per phase.
        assert len(stores[0].conflicts) + len(stores[1].conflicts) >= 2

        winners = [o for o in final_outcome if isinstance(o, AppendResult)]
        losers = [o for o in final_outcome if isinstance(o, DomainError)]
        assert len(winners) == 1 and len(losers) == 1, final_outcome
        assert isinstance(losers[0], TimelineViolation)
        assert losers[0].rule == "already_resolved"

        check = open_store(database_url)
        try:
            log = assert_gap_free(check)
            stream = check.load_stream(incident_stream(AGREEMENT, "INC-X"))
            by_id = {e.event_id: e.position for e in stream}
            # No event lost: every acknowledged position holds that event.
            acknowledged = {**results[0], **results[1], winners[0].event_id: winners[0].position}
            assert len(acknowledged) == 3 * rounds + 1
            assert {k: by_id[k] for k in acknowledged} == acknowledged
            assert set(by_id) == {"open", *acknowledged}
            assert len(log) == 1 + 1 + 3 * rounds + 1  # agreement, opened, series, resolved
            reader = LedgerService(check, clock)
            check_incident_timeline(reader.agreement(AGREEMENT), stream)
        finally:
            check.close()
    finally:
        for s in stores:
            s.inner.close()


def test_stale_cache_conflict_is_retried_with_fresh_state(database_url: str,
                                                         clock: Callable[[], int]) -> None:
    """Deterministic: writer A's cached stream is stale; its append conflicts
    for real, reloads, and is judged against what B stored."""
    a_store, b_store = open_store(database_url), open_store(database_url)
    try:
        counting = GatedStore(a_store, threading.Barrier(1))
        a = LedgerService(counting, clock)
        b = LedgerService(b_store, clock)
        register_herts(a)
        a.append(LOCAL_ADMIN, [opened("open", "INC-S")])
        assert len(a.streams.get(f"incident:{AGREEMENT}/INC-S")) == 1  # cached at version 1
        b.append(LOCAL_ADMIN, [incident_event("p-b", "INC-S", "clock_paused",
                                              "2026-10-10T10:00:00Z", "herts")])
        # A's valid-looking (against its stale cache) pause is refused after the reload.
        with pytest.raises(TimelineViolation) as info:
            a.append(LOCAL_ADMIN, [incident_event("p-a", "INC-S", "clock_paused",
                                                  "2026-10-10T11:00:00Z", "herts")])
        assert info.value.rule == "already_paused"
        assert counting.conflicts == ["MainThread"]
        (resumed,) = a.append(LOCAL_ADMIN, [incident_event("r-a", "INC-S", "clock_resumed",
                                                          "2026-10-10T11:00:00Z", "herts")])
        assert resumed.position == 4
        assert [e.event_id for e in b.store.load_stream(incident_stream(AGREEMENT, "INC-S"))] == [
            "open", "p-b", "r-a"]
        assert_gap_free(b_store)
    finally:
        a_store.close()
        b_store.close()


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
