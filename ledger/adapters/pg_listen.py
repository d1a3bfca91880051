"""Wake-ups from other processes sharing a PostgreSQL database.

Every group transaction ends with ``pg_notify(<schema>_ledger_log, <last
position>)`` (delivered at commit, in commit order). A listener on its own
connection passes the position to this process's log followers and
projections, so they move at once instead of at their next poll. The poll
stays as the fallback: a notification lost while the listener reconnects
costs at most one poll interval, and after every (re)connect the listener
reports the head of the log once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier

log = logging.getLogger(__name__)


class LogListener:
    def __init__(self, store: Any, on_position: Callable[[int], None], *,
                 wait: float = 0.5, reconnect: float = 1.0) -> None:
        recorder = store.recorder
        self._channel: str = recorder.log_channel
        kwargs = dict(recorder.datastore.pool.kwargs)
        kwargs.pop("row_factory", None)
        self._connect = kwargs
        self._store = store
        self._on_position = on_position
        self._wait = wait
        self._reconnect = reconnect
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**self._connect, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(self._channel)))
                    # Whatever was committed before LISTEN took effect.
                    self._on_position(self._store.max_position())
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=self._wait):
                            self._on_position(int(note.payload or 0))
            except Exception as exc:  # the poll covers the gap; try again shortly
                log.warning("log listener lost its connection (%s); reconnecting", exc)
                self._stopping.wait(self._reconnect)
