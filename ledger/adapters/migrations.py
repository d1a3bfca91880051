"""Reading 28: identifiers scoped by agreement, and the migration of a log
written before it.

Before, an ``event_id`` was unique in the whole log and an incident's stream
was named by its id alone (originator ``uuid5("incident:ID")``). Now both are
unique within their agreement: ``ledger_log`` is unique on
``(agreement_id, event_id)`` and an incident's originator is
``uuid5("incident:AGREEMENT/ID")`` (ids cannot hold ``/``). The
``ledger_log.stream`` column keeps ``incident:ID``: rows carry their
agreement, and readers always ask per agreement.

``migrate`` runs when a store is opened, once: it re-keys the originators of
existing incident streams (in ``ledger_log`` and the library's events table;
the events' content, positions and leaf hashes are untouched) and swaps the
unique constraint, in one transaction, holding the write lock. A log already
migrated, or created empty, costs one catalogue query.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ledger.adapters.recorders import LOG_TABLE
from ledger.domain.streams import stream_uuid

SCOPED_INDEX = f"{LOG_TABLE}_agreement_event"
STREAM_INDEX = f"{LOG_TABLE}_stream_name"
_COLUMNS = ("position, event_id, content_hash, originator_id, originator_version, recorded_at, "
            "stream, agreement_id")


def _rekey(rows: list[tuple[Any, str, str]],
           key: Callable[[uuid.UUID], Any]) -> list[tuple[Any, Any]]:
    """(old key, new key) of every incident stream still keyed by its id alone."""
    moves = []
    for originator, stream, agreement_id in rows:
        ident = stream.split(":", 1)[1]
        legacy = key(stream_uuid("incident", ident))
        if str(originator) == str(legacy):
            moves.append((originator, key(stream_uuid("incident", f"{agreement_id}/{ident}"))))
    return moves


def migrate(store: Any) -> None:
    if store.is_postgres:
        _migrate_postgres(store)
    else:
        _migrate_sqlite(store)


def _migrate_sqlite(store: Any) -> None:
    with store.recorder.datastore.transaction(commit=True) as c:
        c.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (LOG_TABLE,))
        row = c.fetchone()
        if row is None or "event_id TEXT NOT NULL UNIQUE" not in str(row[0]):
            return
        c.execute(f"SELECT DISTINCT originator_id, stream, agreement_id FROM {LOG_TABLE} "
                  "WHERE stream LIKE 'incident:%'")
        moves = _rekey([tuple(r) for r in c.fetchall()], lambda u: u.hex)
        swaps = [(new, old) for old, new in moves]
        c.executemany("UPDATE stored_events SET originator_id = ? WHERE originator_id = ?", swaps)
        c.executemany(f"UPDATE {LOG_TABLE} SET originator_id = ? WHERE originator_id = ?", swaps)
        # SQLite cannot drop a column's UNIQUE: the table is rebuilt.
        c.execute(f"CREATE TABLE {LOG_TABLE}_scoped ("
                  "position INTEGER PRIMARY KEY, event_id TEXT NOT NULL, "
                  "content_hash TEXT NOT NULL, originator_id TEXT NOT NULL, "
                  "originator_version INTEGER NOT NULL, recorded_at INTEGER NOT NULL, "
                  "stream TEXT NOT NULL, agreement_id TEXT NOT NULL, "
                  "UNIQUE (agreement_id, event_id))")
        c.execute(f"INSERT INTO {LOG_TABLE}_scoped ({_COLUMNS}) SELECT {_COLUMNS} FROM {LOG_TABLE}")
        c.execute(f"DROP TABLE {LOG_TABLE}")
        c.execute(f"ALTER TABLE {LOG_TABLE}_scoped RENAME TO {LOG_TABLE}")
        for statement in (
            f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_stream ON {LOG_TABLE} (agreement_id, stream)",
            f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_recorded_at ON {LOG_TABLE} (recorded_at)",
            f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_originator ON {LOG_TABLE} "
            "(originator_id, originator_version)",
            f"CREATE INDEX IF NOT EXISTS {STREAM_INDEX} ON {LOG_TABLE} (stream)",
        ):
            c.execute(statement)


def _migrate_postgres(store: Any) -> None:
    datastore = store.recorder.datastore
    schema = datastore.schema
    check = ("SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
             "WHERE n.nspname = %s AND c.conname = %s")
    with datastore.transaction(commit=True) as curs:
        curs.execute(check, (schema, f"{LOG_TABLE}_event_id_key"))
        if curs.fetchone() is None:
            return
        log_table, events_table = store.log_table, store.events_table
        # Writers wait; a second server starting at once finds the work done.
        curs.execute(f"LOCK TABLE {events_table}, {log_table} IN EXCLUSIVE MODE")
        curs.execute(check, (schema, f"{LOG_TABLE}_event_id_key"))
        if curs.fetchone() is None:
            return
        curs.execute(f"SELECT DISTINCT originator_id, stream, agreement_id FROM {log_table} "
                     "WHERE stream LIKE 'incident:%%'")
        rows = [(r["originator_id"], r["stream"], r["agreement_id"]) for r in curs.fetchall()]
        # A one-time migration of a large log outlasts the per-request
        # timeouts every ledger connection carries; it is bounded by the
        # log's size instead, and runs set-based: one statement per table,
        # not two round trips per stream.
        curs.execute("SET LOCAL statement_timeout = 0")
        curs.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        curs.execute("CREATE TEMP TABLE ledger_rekey (old uuid PRIMARY KEY, new uuid NOT NULL) "
                     "ON COMMIT DROP")
        with curs.copy("COPY ledger_rekey (old, new) FROM STDIN") as copy:
            for old, new in _rekey(rows, lambda u: u):
                copy.write_row((old, new))
        curs.execute("ANALYZE ledger_rekey")
        for table in (events_table, log_table):
            curs.execute(f"UPDATE {table} t SET originator_id = m.new FROM ledger_rekey m "
                         "WHERE t.originator_id = m.old")
        curs.execute(f'ALTER TABLE {log_table} DROP CONSTRAINT "{LOG_TABLE}_event_id_key"')
        curs.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {SCOPED_INDEX} ON {log_table} "
                     "(agreement_id, event_id)")
        curs.execute(f"CREATE INDEX IF NOT EXISTS {STREAM_INDEX} ON {log_table} (stream)")
