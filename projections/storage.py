"""Read-model tables in the event store's own database, with one portable
transaction API for SQLite and PostgreSQL.

Projections write their rows and their tracking position through one `Tx`,
so a crash leaves either both or neither: a restarted projection resumes
exactly where its last committed batch ended (exactly-once by construction).
SQL is written with `?` placeholders and `ON CONFLICT` upserts, which both
databases accept; `Tx.table` qualifies a name with the PostgreSQL schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from ledger.adapters.ddl import already_made, is_ddl, lock_set_up
from ledger.adapters.recorders import sqlite_write_transaction

TRACKING_TABLE = "projection_tracking"


class Tx(Protocol):
    is_postgres: bool

    @property
    def cursor(self) -> Any:
        """The DB-API cursor of the transaction (to bind the store's reads to it)."""

    def table(self, name: str) -> str: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def insert_rows(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Plain inserts of many rows (COPY on PostgreSQL)."""

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A `column IN values` condition and its parameters."""


# SQLite limits the parameters of one statement; PostgreSQL takes an array.
SQLITE_IN_LIMIT = 500


def chunked(values: Sequence[Any], size: int = SQLITE_IN_LIMIT) -> list[Sequence[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


class _Tx:
    def __init__(self, cursor: Any, is_postgres: bool, schema: str | None) -> None:
        self._cursor = cursor
        self.is_postgres = is_postgres
        self._schema = schema

    @property
    def cursor(self) -> Any:
        return self._cursor

    def table(self, name: str) -> str:
        return f'"{self._schema}".{name}' if self._schema else name

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.is_postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def insert_rows(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.is_postgres:
            # COPY: one stream instead of a statement per row, which is most
            # of a rebuild's database time with executemany.
            with self._cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ",".join("?" * (columns.count(",") + 1))
        self._cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                 [tuple(r) for r in rows])

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if self.is_postgres:
            # One array parameter: the planner uses the index, where a long
            # list of parameters in a prepared statement got a sequential scan.
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._sql(sql), tuple(params))
        rows = self._cursor.fetchall()
        if self.is_postgres:
            return [tuple(r.values()) for r in rows]
        return [tuple(r) for r in rows]


class _SetUpTx(_Tx):
    """A PostgreSQL set-up transaction: DDL runs only when the schema lacks
    what it makes, and then under the schema's set-up lock."""

    def __init__(self, cursor: Any, schema: str | None) -> None:
        super().__init__(cursor, True, schema)
        self._locked = False
        self.executed: list[str] = []  # the DDL that did run (tests read it)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if is_ddl(sql):
            # See ledger.adapters.ddl: no table lock unless the DDL must run.
            if already_made(self._cursor, sql, self._schema):
                return
            if not self._locked:
                lock_set_up(self._cursor, self._schema)
                self._locked = True
                # Another set-up may have made it while this one waited.
                if already_made(self._cursor, sql, self._schema):
                    return
            self.executed.append(sql)
        super().execute(sql, params)


class ProjectionDatabase:
    """Transactions on the event store's datastore (its pool and settings)."""

    def __init__(self, datastore: Any, is_postgres: bool) -> None:
        self._datastore = datastore
        self.is_postgres = is_postgres
        self._schema: str | None = getattr(datastore, "schema", None) if is_postgres else None

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema of the ledger's tables (None on SQLite)."""
        return self._schema

    @classmethod
    def of_store(cls, store: Any) -> ProjectionDatabase:
        return cls(store.recorder.datastore, store.is_postgres)

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Tx]:
        if commit and not self.is_postgres:
            with sqlite_write_transaction(self._datastore) as cursor:
                yield _Tx(cursor, False, None)
            return
        with self._datastore.transaction(commit=commit) as cursor:
            yield _Tx(cursor, self.is_postgres, self._schema)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """Single-statement reads without a transaction around them: on
        PostgreSQL each statement runs on its own (autocommit), which saves
        the BEGIN and ROLLBACK round trips of a read-only transaction. For
        reads that are consistent statement by statement (an append-only
        table read up to a size read first)."""
        if not self.is_postgres:
            with self.transaction(commit=False) as tx:
                yield tx
            return
        with self._datastore.get_connection() as conn:
            conn.autocommit = True
            try:
                yield _Tx(conn.cursor(), True, self._schema)
            finally:
                conn.autocommit = False

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A read-only transaction that sees one committed state throughout
        (tracking position and rows agree). SQLite read transactions are
        snapshots already; PostgreSQL needs REPEATABLE READ for that."""
        with self.transaction(commit=False) as tx:
            if self.is_postgres:
                tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                # Without statistics the planner's costs are guesses, often
                # large enough to compile queries (100-300 ms) that run in
                # milliseconds.
                tx.execute("SET LOCAL jit = off")
            yield tx

    @contextmanager
    def setting_up(self) -> Iterator[Tx]:
        """The transaction for start-up DDL (`CREATE ... IF NOT EXISTS`, a
        read model's layout change): on PostgreSQL it takes no table lock
        when the schema is current, so a process starting beside a running
        leader never waits for, or blocks, the leader's batches."""
        if not self.is_postgres:
            with self.transaction() as tx:
                yield tx
            return
        with self._datastore.transaction(commit=True) as cursor:
            yield _SetUpTx(cursor, self._schema)

    def create_tracking_table(self) -> None:
        with self.setting_up() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {tx.table(TRACKING_TABLE)} ("
                "name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
                "recorded_at BIGINT NOT NULL DEFAULT 0)"
            )


def read_position(tx: Tx, name: str) -> tuple[int, int]:
    """(position, recorded_at of that position) the projection has applied."""
    rows = tx.fetchall(
        f"SELECT position, recorded_at FROM {tx.table(TRACKING_TABLE)} WHERE name = ?", (name,)
    )
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def ensure_position(tx: Tx, name: str) -> None:
    """A tracking row exists from the start, so there is always a row to lock."""
    # Read first: the insert would wait for a leader's batch that is moving
    # the row (ON CONFLICT waits for an in-progress update of the conflict).
    if tx.fetchall(f"SELECT 1 FROM {tx.table(TRACKING_TABLE)} WHERE name = ?", (name,)):
        return
    tx.execute(
        f"INSERT INTO {tx.table(TRACKING_TABLE)} (name, position, recorded_at) "
        "VALUES (?, 0, 0) ON CONFLICT (name) DO NOTHING", (name,))


def lock_position(tx: Tx, name: str) -> int:
    """The committed position, locked until the transaction ends, so two
    processes sharing a PostgreSQL database never apply the same batch
    (SQLite has a single writer anyway)."""
    lock = " FOR UPDATE" if tx.is_postgres else ""
    rows = tx.fetchall(
        f"SELECT position FROM {tx.table(TRACKING_TABLE)} WHERE name = ?{lock}", (name,))
    return int(rows[0][0]) if rows else 0


def write_position(tx: Tx, name: str, position: int, recorded_at: int) -> None:
    tx.execute(
        f"INSERT INTO {tx.table(TRACKING_TABLE)} (name, position, recorded_at) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
        "recorded_at = excluded.recorded_at",
        (name, position, recorded_at),
    )
