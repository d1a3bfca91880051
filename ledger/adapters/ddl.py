"""Start-up DDL on PostgreSQL that leaves a running ledger alone.

`CREATE INDEX IF NOT EXISTS` takes SHARE on its table before it finds the
index there, so a process starting beside a running leader queued behind the
leader's write (ROW EXCLUSIVE, or the events table's EXCLUSIVE) while holding
the tables it had reached, which the leader wrote next: a deadlock. So each
`CREATE ... IF NOT EXISTS` first looks its relation up in the catalogue
(`to_regclass` takes no lock) and runs only when it is missing; what runs
does so under a transaction-scoped advisory lock per schema, which
serialises set-ups (two concurrent `CREATE TABLE IF NOT EXISTS` of one table
fail on pg_type's unique index, two `CREATE OR REPLACE FUNCTION` with "tuple
concurrently updated").
"""

from __future__ import annotations

import re
from typing import Any

_CREATE = re.compile(r"\s*CREATE\s+(?:UNIQUE\s+)?(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\S+)",
                     re.IGNORECASE)


def is_ddl(statement: str) -> bool:
    return re.match(r"\s*(CREATE|DROP|ALTER)\s", statement, re.IGNORECASE) is not None


def lock_set_up(cursor: Any, schema: str | None) -> None:
    """Until the transaction ends, no other set-up of `schema` runs DDL."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                   (f"sla-ledger schema set-up {schema}",))


def already_made(cursor: Any, statement: str, schema: str | None) -> bool:
    """Whether `statement` creates, IF NOT EXISTS, a table or index the
    database has (looked up without taking a lock)."""
    created = _CREATE.match(statement)
    if created is None:
        return False
    kind, name = created.group(1).upper(), created.group(2)
    # An index lives in its table's schema; table names here are qualified.
    if kind == "INDEX" and "." not in name and schema:
        name = f'"{schema}".{name}'
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (name,))
    row = cursor.fetchone()
    return bool(row["present"] if isinstance(row, dict) else row[0])
