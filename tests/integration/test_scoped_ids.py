"""Reading 28 in storage: ids scoped by agreement, and the migration of a log
written when they were global (on SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from ledger.adapters.eventstore import EventStore, open_store
from ledger.adapters.recorders import make_postgres_recorder, make_sqlite_recorder
from ledger.application.ledger_service import content_hash
from ledger.application.ports import StreamWrite, VersionConflict
from ledger.audit.leaf import event_leaf_hash
from ledger.domain import events as ev
from ledger.domain.instants import parse_instant
from ledger.domain.streams import incident_stream, stream_uuid

T0 = parse_instant("2026-10-01T00:00:00Z")


def _event(event_id: str, incident: str, agreement: str, minute: int = 0) -> ev.LedgerEvent:
    return ev.LedgerEvent(event_id=event_id, agreement_id=agreement, incident_id=incident,
                          occurred_at=T0 + minute * 60_000_000, actor="bt",
                          payload=ev.Responded(), submitted_by="tester")


def _legacy_store(url: str) -> EventStore:
    """A store as the ledger opened it before reading 28 (no migration)."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return EventStore(make_sqlite_recorder(url[len("sqlite:///"):]), url)
    schema = parse_qs(parsed.query)["schema"][0]
    return EventStore(make_postgres_recorder(
        dbname=parsed.path[1:], host=parsed.hostname or "127.0.0.1", port=parsed.port or 5432,
        user=parsed.username or "postgres", password="", schema=schema), url)


def _legacy_write(event: ev.LedgerEvent, version: int) -> StreamWrite:
    # before reading 28 an incident's stream was named by its id alone
    return StreamWrite(f"incident:{event.incident_id}", stream_uuid("incident", event.incident_id),
                       version, (event,), (content_hash(event),))


def test_a_log_with_global_ids_is_migrated_on_open(database_url: str) -> None:
    legacy = _legacy_store(database_url)
    try:
        first, second = _event("e-1", "INC-1", "agr-a"), _event("e-2", "INC-1", "agr-a", 1)
        other = _event("e-3", "INC-2", "agr-b")
        assert legacy.append([_legacy_write(first, 0), _legacy_write(second, 1),
                              _legacy_write(other, 0)], T0) == [1, 2, 3]
        before = [(e.position, event_leaf_hash(e)) for e in legacy.read_log(0, 10)]
    finally:
        legacy.close()

    store = open_store(database_url)
    try:
        # same events, positions and leaves; streams found under their agreement
        assert [(e.position, event_leaf_hash(e)) for e in store.read_log(0, 10)] == before
        assert [e.event_id for e in store.load_stream(incident_stream("agr-a", "INC-1"))] == \
            ["e-1", "e-2"]
        assert [e.event_id for e in store.load_stream(incident_stream("agr-b", "INC-2"))] == ["e-3"]
        assert store.load_stream(stream_uuid("incident", "INC-1")) == []
        # ids are now unique per agreement: agr-b may use e-1 and INC-1 too
        again = _event("e-1", "INC-1", "agr-b")
        assert store.append([StreamWrite("incident:agr-b/INC-1", incident_stream("agr-b", "INC-1"),
                                         0, (again,), (content_hash(again),))], T0) == [4]
        assert store.lookup_event_ids([("agr-a", "e-1"), ("agr-b", "e-1")]) == {
            ("agr-a", "e-1"): (content_hash(first), 1), ("agr-b", "e-1"): (content_hash(again), 4)}
        # ...but still once within one agreement
        with pytest.raises(VersionConflict):
            store.append([StreamWrite("incident:agr-a/INC-9", incident_stream("agr-a", "INC-9"),
                                      0, (_event("e-1", "INC-9", "agr-a"),), ("x",))], T0)
        assert store.incident_agreements(["INC-1", "INC-2", "INC-3"]) == {
            "INC-1": {"agr-a", "agr-b"}, "INC-2": {"agr-b"}}
    finally:
        store.close()
    open_store(database_url).close()  # migrating twice changes nothing
