"""Which replica projects and signs: one leader per database, elected with a
PostgreSQL session-level advisory lock held by a dedicated connection.

Why a session lock on its own connection: the lock lives exactly as long as
that backend. When the leader's process dies (kill -9, OOM) or its network
goes, PostgreSQL ends the backend and releases the lock; a follower trying
every `interval` takes it over. Pooled connections (PgBouncer in transaction
mode) never carry it: this is the one connection with session state.

Fencing: a checkpoint is stored in a transaction *on the lock connection*
(`fenced`). If that connection is gone the lock is gone with it and the
insert cannot commit, so a replica that lost the lock (and does not know it
yet) can sign all it wants in memory: nothing it signs is stored or handed
out. The signed note is returned to callers only after that commit.

Followers ask the leader for a fresh checkpoint with `pg_notify` on
`<schema>_checkpoint_wanted` (delivered at commit, no session state), which
the leader LISTENs for on the lock connection.

SQLite keeps one process per database: `SoloLeadership` always leads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from projections.storage import ProjectionDatabase, Tx, _Tx

log = logging.getLogger(__name__)


class Leadership(Protocol):
    def leading(self) -> bool: ...

    def fenced(self) -> Any:
        """A context manager: a transaction (Tx) that commits only while this
        replica still holds the leadership."""

    def request_checkpoint(self) -> None:
        """Asks the leader (maybe this replica) for a checkpoint of the log as it is."""


class SoloLeadership:
    """The single-process mode (SQLite, tools): always the leader."""

    def __init__(self, db: ProjectionDatabase) -> None:
        self._db = db
        self.on_checkpoint_wanted: Callable[[], None] | None = None

    def leading(self) -> bool:
        return True

    @contextmanager
    def fenced(self) -> Iterator[Tx]:
        with self._db.transaction() as tx:
            yield tx

    def request_checkpoint(self) -> None:
        if self.on_checkpoint_wanted is not None:
            self.on_checkpoint_wanted()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def lock_key(schema: str) -> int:
    """A 64-bit advisory lock key private to one ledger (one schema)."""
    digest = hashlib.sha256(f"sla-ledger leader {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class NotLeader(Exception):
    """This replica does not (or no longer) hold the leadership."""


class PgLeadership:
    """Tries for the advisory lock every `interval` seconds; while it holds
    it, waits on the lock connection for checkpoint requests, which also
    notices a broken connection within `interval`."""

    def __init__(self, store: Any, *, interval: float = 0.5,
                 on_change: Callable[[bool], None] | None = None) -> None:
        datastore = store.recorder.datastore
        self.schema: str = datastore.schema
        self.key = lock_key(self.schema)
        self.channel = f"{self.schema}_checkpoint_wanted"
        # Same server and credentials as the pool; keepalives and a user
        # timeout so a silent network loss ends the session in seconds.
        self._connect = dict(datastore.pool.kwargs)
        self._connect.update(keepalives=1, keepalives_idle=2, keepalives_interval=1,
                             keepalives_count=2, tcp_user_timeout=4000, row_factory=dict_row,
                             # who leads, for operators (pg_stat_activity) and tests
                             application_name=f"sla-ledger leader pid {os.getpid()}")
        self._db = ProjectionDatabase.of_store(store)
        self.interval = interval
        self.on_change = on_change
        self.on_checkpoint_wanted: Callable[[], None] | None = None
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._conn_lock = threading.RLock()
        self._leading = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.elected = threading.Event()  # set while leading (tests, health)

    def leading(self) -> bool:
        return self._leading

    # -- the lock connection ---------------------------------------------
    def _set(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            self.elected.set()
        else:
            self.elected.clear()
        log.warning("this replica %s the projection and signing leader",
                    "is now" if leading else "is no longer")
        if self.on_change is not None:
            try:
                self.on_change(leading)
            except Exception:
                log.exception("leadership listener failed")

    def _drop(self) -> None:
        self._set(False)
        with self._conn_lock:
            if self._conn is not None:
                with suppress(Exception):
                    self._conn.close()
                self._conn = None

    def _round(self) -> None:
        if self._conn is None:
            conn = psycopg.connect(**self._connect, autocommit=True, connect_timeout=5)
            conn.execute("SET statement_timeout = '5s'")
            with self._conn_lock:
                self._conn = conn
        conn = self._conn
        if not self._leading:
            with self._conn_lock:
                row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (self.key,)).fetchone()
                got = bool(row and row["got"])
                if got:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(self.channel)))
            if not got:
                self._stopping.wait(self.interval)
                return
            self._set(True)
        wanted = False
        for _ in conn.notifies(timeout=self.interval):
            wanted = True
        if not wanted:
            # A round trip proves the session (and so the lock) is alive.
            with self._conn_lock:
                conn.execute("SELECT 1")
        elif self.on_checkpoint_wanted is not None:
            self.on_checkpoint_wanted()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._round()
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("leadership connection failed (%s); no longer leading, retrying", exc)
                self._drop()
                self._stopping.wait(self.interval)
        self._drop()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._drop()

    # -- fenced writes ---------------------------------------------------
    @contextmanager
    def fenced(self) -> Iterator[Tx]:
        with self._conn_lock:
            conn = self._conn
            if not self._leading or conn is None:
                raise NotLeader("this replica is not the leader")
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    # The lock is held by this very session, or the session is
                    # gone and the commit fails: either way no other leader
                    # can have stored anything in between.
                    cursor.execute(
                        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid() AND granted "
                        "AND objid::bigint = %s::bigint & 4294967295 "
                        "AND classid::bigint = (%s::bigint >> 32) & 4294967295",
                        (self.key, self.key))
                    row = cursor.fetchone()
                    if not row or not row["n"]:
                        raise NotLeader("the leadership lock is no longer held")
                    yield _Tx(cursor, True, self.schema)
            except psycopg.OperationalError as exc:
                raise NotLeader(f"the leadership connection failed: {exc}") from exc

    def request_checkpoint(self) -> None:
        with self._db.transaction() as tx:
            tx.execute("SELECT pg_notify(?, '')", (self.channel,))
