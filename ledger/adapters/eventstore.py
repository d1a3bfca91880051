"""The ledger's event store: streams of LedgerEvents over the library's
recorders, with gap-free positions and durable idempotency keys.

Each incident and each agreement is one stream (a library "originator");
optimistic concurrency comes from the library's (originator_id, version)
primary key, atomic batches from inserting every stream's events in one
`insert_events` call.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger.adapters.db_errors import database_error
from ledger.adapters.migrations import migrate
from ledger.adapters.recorders import (
    LOG_TABLE,
    LogRow,
    PostgresLedgerRecorder,
    SQLiteLedgerRecorder,
    StreamMoved,
    make_postgres_recorder,
    make_sqlite_recorder,
)
from ledger.adapters.stored_state import decode_state, encode_state
from ledger.application.ports import StreamWrite, VersionConflict
from ledger.domain.errors import DomainError
from ledger.domain.events import LedgerEvent
from ledger.domain.streams import log_stream, stream_for


class EventStore:
    """Synchronous store; the application runs it off the event loop."""

    def __init__(self, recorder: SQLiteLedgerRecorder | PostgresLedgerRecorder, url: str) -> None:
        self.recorder = recorder
        self.url = url
        self.is_postgres = isinstance(recorder, PostgresLedgerRecorder)
        events = "ledger_events" if self.is_postgres else "stored_events"
        if self.is_postgres:
            schema = getattr(recorder.datastore, "schema", "public")
            events = f'"{schema}".{events}'
            self.log_table = f'"{schema}".{LOG_TABLE}'
        else:
            self.log_table = LOG_TABLE
        self.events_table = events
        join = (
            f"FROM {self.log_table} l JOIN {events} e ON e.originator_id = l.originator_id "
            "AND e.originator_version = l.originator_version "
        )
        self._join = join
        select = f"SELECT l.position, e.state {join}"
        self._sql_stream = f"{select} WHERE l.originator_id = ? ORDER BY l.originator_version"
        self._sql_log = f"{select} WHERE l.position > ? AND l.position <= ? ORDER BY l.position LIMIT ?"
        self._sql_agreement = (f"{select} WHERE l.agreement_id = ? AND l.position > ? "
                               "AND l.position <= ? ORDER BY l.position")
        self._write_lock = threading.Lock()
        self._bound = threading.local()

    # -- reads ---------------------------------------------------------------
    @contextmanager
    def bound(self, cursor: Any) -> Iterator[None]:
        """Reads made by this thread inside the block run on `cursor` (an open
        transaction's), so whoever holds a connection never waits for a
        second one while holding it."""
        previous = getattr(self._bound, "cursor", None)
        self._bound.cursor = cursor
        try:
            yield
        finally:
            self._bound.cursor = previous

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        bound = getattr(self._bound, "cursor", None)
        if bound is not None:
            yield bound
            return
        if self.is_postgres:
            datastore: Any = self.recorder.datastore
            with datastore.get_connection() as conn, conn.cursor() as curs:
                yield curs
        else:
            with self.recorder.datastore.transaction(commit=False) as curs:
                yield curs

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.is_postgres:
            sql = sql.replace("?", "%s")
        with self.cursor() as curs:
            curs.execute(sql, tuple(params))
            rows = curs.fetchall()
        if self.is_postgres:
            return [tuple(r.values()) for r in rows]
        return [tuple(r) for r in rows]

    def _stream_key(self, stream: uuid.UUID) -> Any:
        return stream if self.is_postgres else stream.hex

    def load_stream(self, stream: uuid.UUID) -> list[LedgerEvent]:
        rows = self.query(self._sql_stream, (self._stream_key(stream),))
        return [decode_state(bytes(state), int(pos)) for pos, state in rows]

    def read_log(self, after: int, limit: int = 1000, upto: int | None = None) -> list[LedgerEvent]:
        rows = self.query(self._sql_log, (after, upto if upto is not None else 2**62, limit))
        return [decode_state(bytes(state), int(pos)) for pos, state in rows]

    def read_agreement(self, agreement_id: str, upto: int | None = None,
                       after: int = 0) -> list[LedgerEvent]:
        """Every event of one agreement (its own and its incidents'), in position order."""
        rows = self.query(self._sql_agreement,
                          (agreement_id, after, upto if upto is not None else 2**62))
        return [decode_state(bytes(state), int(pos)) for pos, state in rows]

    def read_streams(self, agreement_id: str, streams: Sequence[str],
                     upto: int) -> dict[str, list[LedgerEvent]]:
        """Several streams of one agreement ("incident:ID"), up to a position."""
        out: dict[str, list[LedgerEvent]] = {}
        if not streams:
            return out
        rows = self.query(
            f"SELECT l.stream, l.position, e.state {self._join} WHERE l.agreement_id = ? "
            f"AND l.stream IN ({','.join('?' * len(streams))}) AND l.position <= ? "
            "ORDER BY l.position",
            (agreement_id, *streams, upto),
        )
        for stream, pos, state in rows:
            out.setdefault(str(stream), []).append(decode_state(bytes(state), int(pos)))
        return out

    def read_log_raw(self, after: int, limit: int, upto: int | None = None) -> list[tuple[int, bytes]]:
        """Positions and encoded states, for rebuilds that decode themselves."""
        rows = self.query(self._sql_log, (after, upto if upto is not None else 2**62, limit))
        return [(int(pos), bytes(state)) for pos, state in rows]

    def max_position(self) -> int:
        rows = self.query(f"SELECT COALESCE(MAX(position), 0) FROM {self.log_table}")
        return int(rows[0][0])

    def position_recorded_by(self, recorded_at: int) -> int:
        """The last position stored at or before the instant (0 if none)."""
        rows = self.query(
            f"SELECT COALESCE(MAX(position), 0) FROM {self.log_table} WHERE recorded_at <= ?",
            (recorded_at,),
        )
        return int(rows[0][0])

    def lookup_event_ids(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int]]:
        """(agreement_id, event_id) -> (content_hash, position) for the ids already
        stored: event ids are unique within their agreement (reading 28)."""
        found: dict[tuple[str, str], tuple[str, int]] = {}
        by_agreement: dict[str, list[str]] = {}
        # An id holding NUL was never stored (validation refuses it), and
        # PostgreSQL cannot even compare one: asking would fail, not miss.
        for agreement_id, event_id in dict.fromkeys(keys):
            if "\x00" not in event_id and "\x00" not in agreement_id:
                by_agreement.setdefault(agreement_id, []).append(event_id)
        for agreement_id, ids in by_agreement.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for event_id, digest, position in self.query(
                    f"SELECT event_id, content_hash, position FROM {self.log_table} "
                    f"WHERE agreement_id = ? AND event_id IN ({marks})",
                    [agreement_id, *chunk],
                ):
                    found[(agreement_id, str(event_id))] = (str(digest), int(position))
        return found

    def find_event(self, event_id: str) -> list[tuple[str, int]]:
        """(agreement_id, position) of every stored event with this id."""
        if "\x00" in event_id:
            return []
        rows = self.query(f"SELECT agreement_id, position FROM {self.log_table} WHERE event_id = ?",
                          (event_id,))
        return [(str(a), int(p)) for a, p in rows]

    def incident_agreements(self, incident_ids: Sequence[str]) -> dict[str, set[str]]:
        """incident_id -> the agreements holding an incident with that id."""
        out: dict[str, set[str]] = {}
        ids = [i for i in dict.fromkeys(incident_ids) if "\x00" not in i]
        for start in range(0, len(ids), 500):
            chunk = [f"incident:{i}" for i in ids[start:start + 500]]
            for stream, agreement_id in self.query(
                    f"SELECT DISTINCT stream, agreement_id FROM {self.log_table} "
                    f"WHERE stream IN ({','.join('?' * len(chunk))})", chunk):
                out.setdefault(str(stream).split(":", 1)[1], set()).add(str(agreement_id))
        return out

    def stream_names(self, prefix: str, agreement_id: str | None = None) -> list[str]:
        """Distinct stream names ("incident:ID", "agreement:ID") in name order."""
        sql = f"SELECT DISTINCT stream FROM {self.log_table} WHERE stream LIKE ?"
        params: list[Any] = [prefix + "%"]
        if agreement_id is not None:
            sql += " AND agreement_id = ?"
            params.append(agreement_id)
        return sorted(str(r[0]) for r in self.query(sql + " ORDER BY stream", params))

    # -- writes --------------------------------------------------------------
    def append(self, writes: Sequence[StreamWrite], recorded_at: int,
               expect: dict[str, int] | None = None) -> list[int]:
        """Store every write in one transaction; returns positions in order.

        `expect` maps stream names the writes were validated against (and do
        not write to, e.g. an agreement's terms) to the version they had.
        Raises VersionConflict if any stream moved or an event_id was taken.
        """
        rows: list[LogRow] = []
        for write in writes:
            for offset, (event, digest) in enumerate(
                zip(write.events, write.content_hashes, strict=True), start=1
            ):
                stored = StoredEvent(
                    originator_id=write.stream,
                    originator_version=write.expected_version + offset,
                    topic=f"ledger.v1/{event.type}",
                    state=encode_state(replace(event, recorded_at=recorded_at)),
                )
                rows.append(LogRow(stored, event.event_id, digest, log_stream(write.name),
                                   event.agreement_id))
        if not rows:
            return []
        versions = {stream_for(name): v for name, v in (expect or {}).items()}
        try:
            with self._write_lock:
                first = self.recorder.write_group(rows, recorded_at, versions)
        except (IntegrityError, StreamMoved) as exc:
            raise VersionConflict(str(exc) or "a stream moved") from exc
        return list(range(first, first + len(rows)))

    def stream_versions(self, names: Sequence[str]) -> dict[str, int]:
        """The current version (event count) of each named stream; 0 if empty."""
        out = dict.fromkeys(names, 0)
        keys = {self._stream_key(stream_for(n)): n for n in names}
        for start in range(0, len(names), 500):
            chunk = list(keys)[start:start + 500]
            rows = self.query(
                f"SELECT originator_id, MAX(originator_version) FROM {self.events_table} "
                f"WHERE originator_id IN ({','.join('?' * len(chunk))}) GROUP BY originator_id",
                chunk)
            for key, version in rows:
                out[keys[key if self.is_postgres else str(key)]] = int(version)
        return out

    def load_streams(self, names: Sequence[str]) -> dict[str, list[LedgerEvent]]:
        """Several whole streams in one query per 500 names."""
        out: dict[str, list[LedgerEvent]] = {n: [] for n in names}
        keys = {self._stream_key(stream_for(n)): n for n in names}
        ordered = list(keys)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            rows = self.query(
                f"SELECT l.originator_id, l.position, e.state {self._join} "
                f"WHERE l.originator_id IN ({','.join('?' * len(chunk))}) "
                "ORDER BY l.originator_id, l.originator_version", chunk)
            for key, pos, state in rows:
                out[keys[key if self.is_postgres else str(key)]].append(
                    decode_state(bytes(state), int(pos)))
        return out

    def database_error(self, exc: BaseException) -> DomainError | None:
        return database_error(exc)

    def close(self) -> None:
        self.recorder.datastore.close()


def open_store(url: str) -> EventStore:
    """sqlite:///relative/or//absolute/path.db, sqlite:///:memory: is refused
    (the log must survive restarts), postgresql://user@host:port/db?schema=s."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        if not path:
            raise ValueError(f"sqlite URL names no file: {url!r}")
        import os

        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        return _migrated(EventStore(make_sqlite_recorder(path), url))
    if parsed.scheme in ("postgresql", "postgres"):
        options = parse_qs(parsed.query)
        schema = options.get("schema", ["public"])[0]
        recorder = make_postgres_recorder(
            dbname=(parsed.path or "/postgres")[1:] or "postgres",
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password or ""),
            schema=schema,
            pool_size=int(options.get("pool_size", ["5"])[0]),
            statement_timeout=float(options.get("statement_timeout", ["30"])[0]),
            idle_in_transaction_timeout=float(options.get("idle_in_transaction_timeout", ["10"])[0]),
        )
        return _migrated(EventStore(recorder, url))
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


def _migrated(store: EventStore) -> EventStore:
    try:
        migrate(store)
    except BaseException:
        store.close()
        raise
    return store
