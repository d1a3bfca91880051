"""EventStore contract, identical on SQLite, PostgreSQL and in memory (`any_store`).

The store is exercised directly (no validation): positions are gap-free,
conflicts store nothing, multi-stream batches are atomic, idempotency keys
are durable, reads page correctly, stored bytes never change.
"""

from __future__ import annotations

import uuid

import pytest

from ledger.adapters.eventstore import EventStore as SqlEventStore
from ledger.adapters.eventstore import open_store
from ledger.adapters.memory_store import MemoryEventStore
from ledger.application.ledger_service import content_hash
from ledger.application.ports import StreamWrite, VersionConflict
from ledger.domain import events as ev
from ledger.domain.instants import parse_instant
from ledger.domain.streams import agreement_stream, incident_stream

T0 = parse_instant("2026-10-01T00:00:00Z")
MINUTE = 60_000_000


def event(event_id: str, incident: str = "INC-1", agreement: str = "agr-a", minute: int = 0,
          payload: ev.Payload | None = None) -> ev.LedgerEvent:
    return ev.LedgerEvent(
        event_id=event_id, agreement_id=agreement, incident_id=incident,
        occurred_at=T0 + minute * MINUTE, actor="bt",
        payload=payload if payload is not None else ev.Responded(),
        submitted_by="tester",
    )


def write(events: list[ev.LedgerEvent], expected_version: int) -> StreamWrite:
    first = events[0]
    if first.incident_id:
        name, stream = f"incident:{first.incident_id}", incident_stream(first.agreement_id, first.incident_id)
    else:
        name, stream = f"agreement:{first.agreement_id}", agreement_stream(first.agreement_id)
    return StreamWrite(name, stream, expected_version, tuple(events),
                       tuple(content_hash(e) for e in events))


Store = SqlEventStore | MemoryEventStore


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def positions(events: list[ev.LedgerEvent]) -> list[int]:
    return [e.position for e in events]


def raw_state(store: Store, stream: uuid.UUID) -> list[tuple[int, bytes]]:
    if isinstance(store, MemoryEventStore):
        return [(r.version, r.state) for r in store.streams.get(stream, [])]
    key = store._stream_key(stream)
    rows = store.query(
        f"SELECT originator_version, state FROM {store.events_table} "
        "WHERE originator_id = ? ORDER BY originator_version", (key,))
    return [(int(v), bytes(s)) for v, s in rows]


def log_rows(store: Store) -> list[tuple[object, ...]]:
    if isinstance(store, MemoryEventStore):
        return [(r.position, r.event_id, r.content_hash, r.version, r.recorded_at, r.log_stream,
                 r.agreement_id) for r in store.log]
    return store.query(
        f"SELECT position, event_id, content_hash, originator_version, recorded_at, stream, "
        f"agreement_id FROM {store.log_table} ORDER BY position")


# -- positions ------------------------------------------------------------------

def test_positions_are_gap_free_across_streams_and_conflicts(store: Store) -> None:
    assert store.max_position() == 0
    assert store.append([write([event("a1", "INC-A"), event("a2", "INC-A", minute=1)], 0)], T0) == [1, 2]
    assert store.append([write([event("b1", "INC-B")], 0)], T0) == [3]
    # A stale writer of INC-A (expected version 0, it is at 2) is refused...
    with pytest.raises(VersionConflict):
        store.append([write([event("a-stale", "INC-A", minute=2)], 0)], T0)
    # ...and a batch colliding on an existing event_id too.
    with pytest.raises(VersionConflict):
        store.append([write([event("b1", "INC-C")], 0)], T0)
    # The rolled-back inserts consumed no positions.
    assert store.append([write([event("a3", "INC-A", minute=3)], 2)], T0) == [4]
    assert store.append(
        [write([event("c1", "INC-C")], 0), write([event("b2", "INC-B", minute=1)], 1)], T0
    ) == [5, 6]
    assert store.max_position() == 6
    log = store.read_log(0)
    assert positions(log) == [1, 2, 3, 4, 5, 6]
    assert [e.event_id for e in log] == ["a1", "a2", "b1", "a3", "c1", "b2"]
    assert positions(store.load_stream(incident_stream("agr-a", "INC-A"))) == [1, 2, 4]
    assert positions(store.load_stream(incident_stream("agr-a", "INC-B"))) == [3, 6]
    assert [r[0] for r in log_rows(store)] == [1, 2, 3, 4, 5, 6]


def test_stored_event_round_trips_with_position_and_recorded_at(store: Store) -> None:
    original = event("e1", "INC-A", payload=ev.Opened("svc", "P2", "bt", reporter="alice"))
    store.append([write([original], 0)], T0 + 7)
    (stored,) = store.load_stream(incident_stream("agr-a", "INC-A"))
    assert stored == ev.LedgerEvent(
        event_id="e1", agreement_id="agr-a", incident_id="INC-A", occurred_at=T0, actor="bt",
        payload=ev.Opened("svc", "P2", "bt", reporter="alice"), position=1,
        recorded_at=T0 + 7, submitted_by="tester")


# -- conflicts and atomicity ------------------------------------------------------

def test_version_conflict_stores_nothing(store: Store) -> None:
    store.append([write([event("a1", "INC-A")], 0)], T0)
    before_log = log_rows(store)
    before_raw = raw_state(store, incident_stream("agr-a", "INC-A"))
    with pytest.raises(VersionConflict):
        store.append([write([event("x1", "INC-A", minute=1), event("x2", "INC-A", minute=2)], 0)],
                     T0 + MINUTE)
    assert log_rows(store) == before_log
    assert raw_state(store, incident_stream("agr-a", "INC-A")) == before_raw
    assert store.lookup_event_ids([("agr-a", "x1"), ("agr-a", "x2")]) == {}
    assert store.max_position() == 1
    assert store.position_recorded_by(T0 + MINUTE) == 1


def test_multi_stream_batch_is_atomic(store: Store) -> None:
    store.append([write([event("a1", "INC-A")], 0)], T0)
    batch = [
        write([event("b1", "INC-B"), event("b2", "INC-B", minute=1)], 0),  # would succeed alone
        write([event("a-stale", "INC-A", minute=1)], 0),  # INC-A is at version 1
    ]
    with pytest.raises(VersionConflict):
        store.append(batch, T0)
    assert store.load_stream(incident_stream("agr-a", "INC-B")) == []
    assert raw_state(store, incident_stream("agr-a", "INC-B")) == []
    assert store.lookup_event_ids([("agr-a", i) for i in ("b1", "b2", "a-stale")]) == {}
    assert store.stream_names("incident:") == ["incident:INC-A"]
    assert store.max_position() == 1
    # The first stream's write is still possible afterwards, at the next position.
    assert store.append([batch[0]], T0) == [2, 3]


def test_batch_with_event_id_taken_in_second_stream_is_atomic(store: Store) -> None:
    store.append([write([event("a1", "INC-A")], 0)], T0)
    with pytest.raises(VersionConflict):
        store.append([write([event("b1", "INC-B")], 0), write([event("a1", "INC-C")], 0)], T0)
    assert store.load_stream(incident_stream("agr-a", "INC-B")) == []
    assert store.load_stream(incident_stream("agr-a", "INC-C")) == []
    assert store.max_position() == 1


# -- idempotency keys ---------------------------------------------------------

def test_idempotency_keys_survive_reopening(database_url: str) -> None:
    first = event("k1", "INC-A")
    second = event("k2", "INC-B", agreement="agr-b")
    store = open_store(database_url)
    try:
        assert store.append([write([first], 0), write([second], 0)], T0) == [1, 2]
    finally:
        store.close()
    reopened = open_store(database_url)
    try:
        keys = [("agr-a", "k1"), ("agr-b", "k2"), ("agr-a", "unknown"), ("agr-a", "k1"),
                ("agr-b", "k1")]  # ids are scoped by agreement (reading 28)
        assert reopened.lookup_event_ids(keys) == {
            ("agr-a", "k1"): (content_hash(first), 1),
            ("agr-b", "k2"): (content_hash(second), 2),
        }
        # Still enforced after reopening: the key cannot be stored again...
        with pytest.raises(VersionConflict):
            reopened.append([write([event("k1", "INC-Z")], 0)], T0)
        # ...and positions continue from the stored log.
        assert reopened.append([write([event("k3", "INC-A", minute=1)], 1)], T0) == [3]
    finally:
        reopened.close()


def test_lookup_event_ids_handles_many_ids(store: Store) -> None:
    events = [event(f"id-{i:04d}", "INC-A", minute=i) for i in range(1200)]
    store.append([write(events, 0)], T0)
    found = store.lookup_event_ids([("agr-a", e.event_id) for e in events] + [("agr-a", "missing")])
    assert len(found) == 1200
    assert found[("agr-a", "id-0000")] == (content_hash(events[0]), 1)
    assert found[("agr-a", "id-1199")] == (content_hash(events[1199]), 1200)


# -- reads --------------------------------------------------------------------

@pytest.fixture
def seven(store: Store) -> Store:
    """Positions 1..7 over two agreements: a a b a b b a."""
    layout = [("INC-A1", "agr-a"), ("INC-A1", "agr-a"), ("INC-B1", "agr-b"),
              ("INC-A2", "agr-a"), ("INC-B1", "agr-b"), (None, "agr-b"), ("INC-A1", "agr-a")]
    versions: dict[str, int] = {}
    for i, (incident, agreement) in enumerate(layout, start=1):
        if incident is None:
            e = ev.LedgerEvent(
                event_id=f"e{i}", agreement_id=agreement, incident_id="", occurred_at=T0,
                actor="bt", payload=ev.MaintenanceScheduled("svc", T0 + 1, T0 + 2))
            key = f"agreement:{agreement}"
        else:
            e = event(f"e{i}", incident, agreement, minute=i)
            key = f"incident:{incident}"
        assert store.append([write([e], versions.get(key, 0))], T0 + i * MINUTE) == [i]
        versions[key] = versions.get(key, 0) + 1
    return store


def test_read_log_pages_in_position_order(seven: Store) -> None:
    assert positions(seven.read_log(0, limit=3)) == [1, 2, 3]
    assert positions(seven.read_log(3, limit=3)) == [4, 5, 6]
    assert positions(seven.read_log(6, limit=3)) == [7]
    assert seven.read_log(7, limit=3) == []
    assert positions(seven.read_log(0)) == [1, 2, 3, 4, 5, 6, 7]
    # Paging through with any page size sees every event exactly once.
    seen: list[int] = []
    after = 0
    while page := seven.read_log(after, limit=2):
        seen.extend(positions(page))
        after = page[-1].position
    assert seen == [1, 2, 3, 4, 5, 6, 7]


def test_read_log_upto_is_inclusive(seven: Store) -> None:
    assert positions(seven.read_log(0, upto=5)) == [1, 2, 3, 4, 5]
    assert positions(seven.read_log(3, limit=100, upto=5)) == [4, 5]
    assert positions(seven.read_log(3, limit=1, upto=5)) == [4]
    assert seven.read_log(5, upto=5) == []
    assert seven.read_log(0, upto=0) == []
    assert [p for p, _ in seven.read_log_raw(2, limit=10, upto=4)] == [3, 4]


def test_read_agreement_filters_and_orders(seven: Store) -> None:
    a = seven.read_agreement("agr-a")
    assert positions(a) == [1, 2, 4, 7]
    assert {e.agreement_id for e in a} == {"agr-a"}
    b = seven.read_agreement("agr-b")
    assert positions(b) == [3, 5, 6]
    assert b[2].type == "maintenance_scheduled"
    assert positions(seven.read_agreement("agr-a", upto=4)) == [1, 2, 4]
    assert positions(seven.read_agreement("agr-b", upto=2)) == []
    assert seven.read_agreement("agr-none") == []


def test_stream_names(seven: Store) -> None:
    assert seven.stream_names("incident:") == ["incident:INC-A1", "incident:INC-A2", "incident:INC-B1"]
    assert seven.stream_names("incident:", "agr-b") == ["incident:INC-B1"]
    assert seven.stream_names("agreement:") == ["agreement:agr-b"]


def test_position_recorded_by(seven: Store) -> None:
    # Event i was recorded at T0 + i minutes.
    assert seven.position_recorded_by(T0) == 0
    assert seven.position_recorded_by(T0 + MINUTE - 1) == 0
    assert seven.position_recorded_by(T0 + MINUTE) == 1
    assert seven.position_recorded_by(T0 + 4 * MINUTE + 30) == 4
    assert seven.position_recorded_by(T0 + 7 * MINUTE) == 7
    assert seven.position_recorded_by(T0 + 10_000 * MINUTE) == 7
    assert [e.recorded_at for e in seven.read_log(0)] == [T0 + i * MINUTE for i in range(1, 8)]


def test_position_recorded_by_with_batches_sharing_an_instant(store: Store) -> None:
    store.append([write([event("a1", "INC-A"), event("a2", "INC-A", minute=1)], 0)], T0)
    store.append([write([event("b1", "INC-B")], 0)], T0)
    store.append([write([event("c1", "INC-C")], 0)], T0 + 1)
    assert store.position_recorded_by(T0 - 1) == 0
    assert store.position_recorded_by(T0) == 3
    assert store.position_recorded_by(T0 + 1) == 4


# -- immutability -------------------------------------------------------------

def test_stored_events_are_never_updated(store: Store) -> None:
    original = event("e1", "INC-A", payload=ev.Resolved(root_cause="bt"))
    store.append([write([original], 0)], T0)
    before_raw = raw_state(store, incident_stream("agr-a", "INC-A"))
    before_log = log_rows(store)
    changed = event("e1", "INC-A", payload=ev.Resolved(root_cause="hp"))
    assert content_hash(changed) != content_hash(original)
    # Same stream, same version, different content: refused.
    with pytest.raises(VersionConflict):
        store.append([write([changed], 0)], T0 + MINUTE)
    # Same event_id appended to another stream (a fresh version 1): refused.
    with pytest.raises(VersionConflict):
        store.append([write([event("e1", "INC-B", payload=ev.Resolved(root_cause="hp"))], 0)],
                     T0 + MINUTE)
    # Same event_id appended after the original in its own stream: refused.
    with pytest.raises(VersionConflict):
        store.append([write([changed], 1)], T0 + MINUTE)
    assert raw_state(store, incident_stream("agr-a", "INC-A")) == before_raw
    assert raw_state(store, incident_stream("agr-a", "INC-B")) == []
    assert log_rows(store) == before_log
    assert store.lookup_event_ids([("agr-a", "e1")]) == {("agr-a", "e1"): (content_hash(original), 1)}
    (stored,) = store.load_stream(incident_stream("agr-a", "INC-A"))
    assert stored.payload == ev.Resolved(root_cause="bt")
    assert stored.recorded_at == T0
