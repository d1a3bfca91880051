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

from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any

from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)
from psycopg.sql import SQL, Identifier


@dataclass(frozen=True, slots=True)
class LogRow:
    """Index row for one stored event, aligned with its StoredEvent."""

    event_id: str
    content_hash: str
    stream: str
    agreement_id: str


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

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        log_rows: Sequence[LogRow] = kwargs["log_rows"]
        recorded_at: int = kwargs["recorded_at"]
        c.execute(f"SELECT COALESCE(MAX(position), 0) FROM {LOG_TABLE}")
        first = int(c.fetchone()[0]) + 1
        c.executemany(
            f"INSERT INTO {LOG_TABLE} VALUES (?,?,?,?,?,?,?,?)",
            [
                (first + i, row.event_id, row.content_hash, s.originator_id.hex
                 if hasattr(s.originator_id, "hex") else s.originator_id,
                 s.originator_version, recorded_at, row.stream, row.agreement_id)
                for i, (row, s) in enumerate(zip(log_rows, stored_events, strict=True))
            ],
        )
        kwargs["positions_out"].extend(range(first, first + len(stored_events)))
        return ids


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
        self._select_max = SQL("SELECT COALESCE(MAX(position), 0) AS m FROM {0}.{1}").format(
            schema, Identifier(LOG_TABLE)
        )
        self._insert_log = SQL("INSERT INTO {0}.{1} VALUES (%s,%s,%s,%s,%s,%s,%s,%s)").format(
            schema, Identifier(LOG_TABLE)
        )

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        # Still inside the transaction that holds the EXCLUSIVE lock on the
        # events table, so MAX(position)+1 cannot race another writer.
        curs.execute(self._select_max)
        first = int(curs.fetchone()["m"]) + 1
        log_rows: Sequence[LogRow] = kwargs["log_rows"]
        recorded_at: int = kwargs["recorded_at"]
        curs.executemany(
            self._insert_log,
            [
                (first + i, row.event_id, row.content_hash, s.originator_id,
                 s.originator_version, recorded_at, row.stream, row.agreement_id)
                for i, (row, s) in enumerate(zip(log_rows, stored_events, strict=True))
            ],
        )
        kwargs["positions_out"].extend(range(first, first + len(stored_events)))
        return ids


class SQLitePool(SQLiteConnectionPool):
    """The library's pool without its lock-order inversion.

    The library queues every request behind one fair semaphore and keeps
    holding it while a writer waits for the writer lock. A projection batch
    holding the writer that asked for a second (reader) connection then
    waited behind that append, which waited for the projection: both stalled
    until the pool timeout. Here a writer waits for the writer lock alone,
    readers never wait for the writer (WAL lets them read beside it), and
    nobody waits while holding the queue.
    """

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
