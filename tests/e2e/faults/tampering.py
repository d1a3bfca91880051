"""Tampering with a ledger's database behind its back, on SQLite and PostgreSQL:
an event edited in place, deleted (a gap), forged in a deleted one's place, and
a leaf row rewritten. Used by the fault tests that must notice it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import psycopg


def _execute(database: str, schema_sql: Callable[[str, str], tuple[str, tuple[Any, ...]]]) -> None:
    if database.startswith("sqlite:"):
        conn = sqlite3.connect(database[len("sqlite:///"):])
        sql, params = schema_sql("stored_events", "ledger_log")
        with conn:
            conn.execute(sql, params)
        conn.close()
        return
    url, _, query = database.partition("?schema=")
    sql, params = schema_sql(f'"{query}".ledger_events', f'"{query}".ledger_log')
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql.replace("?", "%s"), params)


def _state(database: str, position: int) -> bytes:
    rows: list[Any] = []
    if database.startswith("sqlite:"):
        conn = sqlite3.connect(database[len("sqlite:///"):])
        rows = conn.execute("SELECT e.state FROM stored_events e JOIN ledger_log l ON "
                            "e.originator_id = l.originator_id AND e.originator_version = "
                            "l.originator_version WHERE l.position = ?", (position,)).fetchall()
        conn.close()
    else:
        url, _, schema = database.partition("?schema=")
        with psycopg.connect(url) as pg:
            rows = pg.execute(f'SELECT e.state FROM "{schema}".ledger_events e JOIN "{schema}".ledger_log l '
                                "ON e.originator_id = l.originator_id AND e.originator_version = "
                                "l.originator_version WHERE l.position = %s", (position,)).fetchall()
    return bytes(rows[0][0])


def _edited(state: bytes) -> bytes:
    body = json.loads(state)
    body["actor"] = "hp" if body.get("actor") != "hp" else "bt"
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


_WHERE = ("(originator_id, originator_version) IN (SELECT originator_id, originator_version "
          "FROM {log} WHERE position = ?)")


def edit(database: str, position: int) -> None:
    new = _edited(_state(database, position))
    _execute(database, lambda ev, log: (f"UPDATE {ev} SET state = ? WHERE " + _WHERE.format(log=log),
                                        (new, position)))


def delete(database: str, position: int) -> None:
    _execute(database, lambda ev, log: (f"DELETE FROM {log} WHERE position = ?", (position,)))


def forge(database: str, position: int) -> None:
    """Deletes the event at ``position`` and puts a forged one (another
    actor) in its place: its stream version and content hash included."""
    edit(database, position)  # same row, new content: what an insertion in place stores


def rewrite_leaf(database: str, position: int) -> None:
    _execute(database, lambda ev, log: (f"UPDATE {log.replace('ledger_log', 'audit_leaves')} "
                                        "SET leaf_hash = ? WHERE position = ?",
                                        (b"\x00" * 32, position)))
