"""Event recorders: the eventsourcing library's SQLite and PostgreSQL
application recorders, extended with the ledger's own log index.

Why an extra table: the library's notification ids are not gap-free on
PostgreSQL (rolled-back inserts consume sequence values) and it has no notion
of client idempotency keys. `ledger_log` maps every stored event to a gap-free
position and its unique event_id (with a content hash), written in the same
transaction as the events, under the library's write serialisation (the
EXCLUSIVE table lock on PostgreSQL, the single writer connection on SQLite).
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from time import monotonic
from typing import Any

from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    IntegrityError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
)
from psycopg.errors import DuplicateObject
from psycopg.sql import SQL, Identifier

from ledger.adapters.ddl import already_made, lock_set_up


@dataclass(frozen=True, slots=True)
class LogRow:
    """One event to store: the library's stored event and the ledger's index row."""

    stored: StoredEvent
    event_id: str
    content_hash: str
    stream: str
    agreement_id: str


def _key(originator_id: uuid.UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else originator_id


class StreamMoved(Exception):
    """A stream the caller validated against has another version now."""


LOG_TABLE = "ledger_log"


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} ("
            "position INTEGER PRIMARY KEY, "
            "event_id TEXT NOT NULL UNIQUE, "
            "content_hash TEXT NOT NULL, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "recorded_at INTEGER NOT NULL, "
            "stream TEXT NOT NULL, "
            "agreement_id TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_stream ON {LOG_TABLE} (agreement_id, stream)",
            f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_recorded_at ON {LOG_TABLE} (recorded_at)",
            # Loading one stream by id (load_stream) must not scan the log.
            f"CREATE INDEX IF NOT EXISTS {LOG_TABLE}_originator ON {LOG_TABLE} "
            "(originator_id, originator_version)",
        ]

    def _write_group(self, c: Any, rows: Sequence[LogRow], recorded_at: int,
                     expect: dict[uuid.UUID, int]) -> int:
        if expect:
            keys = [k.hex for k in expect]
            c.execute(
                "SELECT originator_id, MAX(originator_version) FROM stored_events "
                f"WHERE originator_id IN ({','.join('?' * len(keys))}) GROUP BY originator_id",
                keys)
            found = {uuid.UUID(str(r[0])): int(r[1]) for r in c.fetchall()}
            if any(found.get(k, 0) != v for k, v in expect.items()):
                raise StreamMoved
        try:
            c.executemany(
                "INSERT INTO stored_events VALUES (?,?,?,?)",
                [(_key(r.stored.originator_id), r.stored.originator_version, r.stored.topic,
                  r.stored.state) for r in rows])
            c.execute(f"SELECT COALESCE(MAX(position), 0) FROM {LOG_TABLE}")
            first = int(c.fetchone()[0]) + 1
            c.executemany(
                f"INSERT INTO {LOG_TABLE} VALUES (?,?,?,?,?,?,?,?)",
                [(first + i, r.event_id, r.content_hash, _key(r.stored.originator_id),
                  r.stored.originator_version, recorded_at, r.stream, r.agreement_id)
                 for i, r in enumerate(rows)])
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(exc) from exc
        return first

    def write_group(self, rows: Sequence[LogRow], recorded_at: int,
                    expect: dict[uuid.UUID, int]) -> int:
        """Stores the rows in one transaction; returns the first position.

        Raises StreamMoved if a stream in `expect` is not at that version,
        IntegrityError if a (stream, version) or an event_id is taken.
        """
        with sqlite_write_transaction(self.datastore) as c:
            return self._write_group(c, rows, recorded_at, expect)


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{log} ("
                "position bigint PRIMARY KEY, "
                "event_id text NOT NULL UNIQUE, "
                "content_hash text NOT NULL, "
                "originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, "
                "recorded_at bigint NOT NULL, "
                "stream text NOT NULL, "
                "agreement_id text NOT NULL)"
            ).format(schema=schema, log=Identifier(LOG_TABLE))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS {idx} ON {schema}.{log} (recorded_at)"
            ).format(idx=Identifier(f"{LOG_TABLE}_recorded_at"), schema=schema,
                     log=Identifier(LOG_TABLE))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS {idx} ON {schema}.{log} (agreement_id, stream)"
            ).format(idx=Identifier(f"{LOG_TABLE}_stream"), schema=schema,
                     log=Identifier(LOG_TABLE))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS {idx} ON {schema}.{log} "
                "(originator_id, originator_version)"
            ).format(idx=Identifier(f"{LOG_TABLE}_originator"), schema=schema,
                     log=Identifier(LOG_TABLE))
        )
        events = SQL("{0}.{1}").format(schema, Identifier(self.events_table_name))
        log = SQL("{0}.{1}").format(schema, Identifier(LOG_TABLE))
        #: Other processes LISTEN here to follow the log at once.
        self.log_channel = f"{self.datastore.schema}_{LOG_TABLE}"
        # The payload is the new head of the log (this transaction's last position).
        self.notify_sql = SQL("SELECT pg_notify(%s, (SELECT MAX(position) FROM {0})::text)"
                              ).format(log)
        self._group_prelude = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout or 10),
            # EXCLUSIVE (readers go on): commit order is position order, and
            # MAX(position) + 1 below cannot race another writer.
            SQL("LOCK TABLE {0} IN EXCLUSIVE MODE").format(events),
        ]
        self._check_versions = SQL(
            "SELECT x.id FROM unnest(%s::uuid[], %s::bigint[]) AS x(id, v) "
            "WHERE COALESCE((SELECT MAX(e.originator_version) FROM {0} e "
            "WHERE e.originator_id = x.id), 0) <> x.v").format(events)
        self._insert_group_events = SQL(
            "INSERT INTO {0} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[])"
        ).format(events)
        self._insert_group_log = SQL(
            "INSERT INTO {0} (position, event_id, content_hash, originator_id, "
            "originator_version, recorded_at, stream, agreement_id) "
            "SELECT m.base + t.n, t.event_id, t.hash, t.oid, t.ver, %s, t.stream, t.agreement "
            "FROM unnest(%s::text[], %s::text[], %s::uuid[], %s::bigint[], %s::text[], "
            "%s::text[]) WITH ORDINALITY AS t(event_id, hash, oid, ver, stream, agreement, n), "
            "(SELECT COALESCE(MAX(position), 0) AS base FROM {0}) AS m "
            "RETURNING position"
        ).format(log)

    def create_table(self) -> None:
        """The library's set-up, without its table locks when the tables and
        indexes are there (see ledger.adapters.ddl), one process at a time."""
        schema = self.datastore.schema
        with self.datastore.transaction(commit=True) as curs:
            lock_set_up(curs, schema)
            for statement in self.sql_create_statements:
                sql = statement.as_string()
                if "CREATE TYPE" in sql:
                    # No IF NOT EXISTS for types: a savepoint keeps the
                    # transaction alive when it is there already.
                    with suppress(DuplicateObject), curs.connection.transaction():
                        curs.execute(statement, prepare=False)
                elif not already_made(curs, sql, schema):
                    curs.execute(statement, prepare=False)
        self.datastore.register_type_adapters()

    def write_group(self, rows: Sequence[LogRow], recorded_at: int,
                    expect: dict[uuid.UUID, int]) -> int:
        """Stores the rows in one transaction (one pipelined round trip plus
        the commit); returns the first position. Raises StreamMoved if a
        stream in `expect` is not at that version, IntegrityError if a
        (stream, version) or an event_id is taken."""
        with self.datastore.get_connection() as conn, conn.pipeline() as pipeline, \
                conn.transaction(), conn.cursor() as curs, conn.cursor() as log:
            for statement in self._group_prelude:
                curs.execute(statement)
            if expect:
                curs.execute(self._check_versions, (list(expect), list(expect.values())))
                pipeline.sync()
                if curs.fetchall():
                    raise StreamMoved
            curs.execute(self._insert_group_events, (
                [r.stored.originator_id for r in rows],
                [r.stored.originator_version for r in rows],
                [r.stored.topic for r in rows],
                [r.stored.state for r in rows]))
            log.execute(self._insert_group_log, (
                recorded_at,
                [r.event_id for r in rows], [r.content_hash for r in rows],
                [r.stored.originator_id for r in rows],
                [r.stored.originator_version for r in rows],
                [r.stream for r in rows], [r.agreement_id for r in rows]))
            curs.execute(self.notify_sql, (self.log_channel,))
            first = min(int(r["position"]) for r in log.fetchall())
        return first


@contextmanager
def sqlite_write_transaction(datastore: SQLiteDatastore) -> Iterator[Any]:
    """A write transaction that takes SQLite's write lock at BEGIN (waiting
    for another process's writer up to the busy timeout). With the library's
    deferred BEGIN, a transaction that read first and then wrote after
    another process committed failed at once with "database is locked"."""
    with datastore.get_connection(commit=True) as conn, conn.cursor() as c:
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


class FairLock:
    """A lock granted in request order. The projection runner releases the
    writer and asks for it again at once (one transaction per projection and
    batch); with a plain lock it could win every time and starve appends."""

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._waiting: deque[object] = deque()
        self._held = False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        ticket = object()
        with self._ready:
            self._waiting.append(ticket)
            deadline = None if timeout is None or timeout < 0 else monotonic() + timeout
            while self._held or self._waiting[0] is not ticket:
                remaining = None if deadline is None else deadline - monotonic()
                if not blocking or (remaining is not None and remaining <= 0):
                    self._waiting.remove(ticket)
                    self._ready.notify_all()
                    return False
                self._ready.wait(remaining)
            self._waiting.popleft()
            self._held = True
            return True

    def release(self) -> None:
        with self._ready:
            self._held = False
            self._ready.notify_all()

    def locked(self) -> bool:
        with self._ready:
            return self._held


class SQLitePool(SQLiteConnectionPool):
    """The library's pool without its lock-order inversion.

    The library queues every request behind one fair semaphore and keeps
    holding it while a writer waits for the writer lock. A projection batch
    holding the writer that asked for a second (reader) connection then
    waited behind that append, which waited for the projection: both stalled
    until the pool timeout. Here a writer waits for the writer lock alone,
    readers never wait for the writer (WAL lets them read beside it), and
    nobody waits while holding the queue. The writer is granted in request
    order (FairLock).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._writer_lock = FairLock()  # type: ignore[assignment]

    def get_connection(
        self, timeout: float | None = None, *, is_writer: bool | None = None
    ) -> SQLiteConnection:
        if self._closed:
            raise ConnectionPoolClosedError
        timeout = self.pool_timeout if timeout is None else timeout
        started = monotonic()
        if is_writer is True:
            if not self._writer_lock.acquire(timeout=timeout):
                raise ConnectionUnavailableError("Timed out waiting for the writer connection")
            try:
                conn = self._get_connection(timeout=max(timeout - (monotonic() - started), 0.0))
            except BaseException:
                self._writer_lock.release()
                raise
            with self._no_readers:
                self._num_writers += 1
        else:
            conn = self._get_connection(timeout=timeout)
            if is_writer is False:
                with self._no_readers:
                    self._num_readers += 1
        conn.is_writer = is_writer
        return conn


def make_sqlite_recorder(path: str) -> SQLiteLedgerRecorder:
    datastore = SQLiteDatastore(path, lock_timeout=10, pool_size=4)
    # Swap in the pool without the inversion (same settings as the library's).
    datastore.pool.close()
    datastore.pool = SQLitePool(db_name=path, lock_timeout=10, pool_size=4, max_overflow=10,
                                pool_timeout=5.0)
    recorder = SQLiteLedgerRecorder(datastore)
    recorder.create_table()
    return recorder


#: No statement runs longer, and no session sits idle inside a transaction
#: longer, than these (seconds): a client that stalls mid-transaction (or a
#: process that is killed) cannot hold the events table's write lock and
#: freeze every other writer. Both are per connection, set at connect time.
STATEMENT_TIMEOUT_SECONDS = 30.0
IDLE_IN_TRANSACTION_SECONDS = 10.0


def make_postgres_recorder(
    *, dbname: str, host: str, port: int, user: str, password: str, schema: str,
    pool_size: int = 5, max_overflow: int = 10,
    statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
    idle_in_transaction_timeout: float = IDLE_IN_TRANSACTION_SECONDS,
) -> PostgresLedgerRecorder:
    datastore = PostgresDatastore(
        dbname, host, port, user, password, schema=schema, pool_size=pool_size,
        max_overflow=max_overflow, lock_timeout=10,
        idle_in_transaction_session_timeout=idle_in_transaction_timeout,
    )
    connect_args: Any = datastore.pool.kwargs
    connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    recorder = PostgresLedgerRecorder(datastore, events_table_name="ledger_events")
    recorder.create_table()
    return recorder
