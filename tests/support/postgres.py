"""The PostgreSQL the tests share: its URL (SLA_LEDGER_TEST_PG_URL, default the
local trust-auth server), whether it is required (SLA_LEDGER_REQUIRE_POSTGRES=1,
as CI sets: then unreachable is a failure, not a skip), and a private schema
per test so parallel suites never see each other's tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

PG_URL = os.environ.get("SLA_LEDGER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("SLA_LEDGER_REQUIRE_POSTGRES") == "1"


def _pg_connect() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)


def _pg_unavailable(exc: Exception) -> None:
    message = f"PostgreSQL unreachable at {PG_URL}: {exc}"
    if REQUIRE_POSTGRES:
        pytest.fail(f"{message} (SLA_LEDGER_REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(f"{message}; set SLA_LEDGER_REQUIRE_POSTGRES=1 to make this a failure")


@contextmanager
def private_schema() -> Iterator[str]:
    """A new PostgreSQL schema, dropped afterwards (skips when PG is down)."""
    try:
        conn = _pg_connect()
    except psycopg.Error as exc:
        _pg_unavailable(exc)
    schema = f"t_{uuid.uuid4().hex}"
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
