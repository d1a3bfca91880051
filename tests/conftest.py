"""Shared fixtures: `database_url` (every store test runs on SQLite and on
PostgreSQL), `any_store` (those and the in-memory store) and a fake clock (no test reads the wall clock).

PostgreSQL: PG_URL (default postgresql://postgres@127.0.0.1:5432/test) must be
reachable; otherwise the postgres params are skipped, unless
SLA_LEDGER_REQUIRE_POSTGRES=1 (as CI sets), in which case they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.adapters.eventstore import EventStore, open_store
from ledger.adapters.memory_store import MemoryEventStore
from ledger.domain.instants import parse_instant

PG_URL = os.environ.get("SLA_LEDGER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("SLA_LEDGER_REQUIRE_POSTGRES") == "1"


def _pg_connect() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)


def _pg_unavailable(exc: Exception) -> None:
    message = f"PostgreSQL unreachable at {PG_URL}: {exc}"
    if REQUIRE_POSTGRES:
        pytest.fail(f"{message} (SLA_LEDGER_REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(f"{message}; set SLA_LEDGER_REQUIRE_POSTGRES=1 to make this a failure")


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for open_store naming an empty database private to this test."""
    with _database(request.param, tmp_path) as url:
        yield url


@contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"  # absolute path: sqlite:////tmp/...
        return
    with private_schema() as schema:
        yield f"{PG_URL}?schema={schema}"


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


class FakeClock:
    """A settable clock in epoch microseconds, the ledger's instant unit."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def set(self, instant: str) -> None:
        self.now = parse_instant(instant)

    def advance(self, micros: int) -> None:
        self.now += micros


FIXED_NOW = "2026-11-05T00:00:00Z"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(parse_instant(FIXED_NOW))


@pytest.fixture
def make_clock() -> Callable[[str], FakeClock]:
    return lambda instant: FakeClock(parse_instant(instant))


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    """An event store on the test's own database (SQLite file or PostgreSQL schema)."""
    s = open_store(database_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(params=[*DATABASES, "memory"])
def any_store(request: pytest.FixtureRequest,
              tmp_path: Path) -> Iterator[EventStore | MemoryEventStore]:
    """Each implementation of the event store port in turn: SQLite, PostgreSQL
    and in memory (for suites that hold every store to one contract)."""
    if request.param == "memory":
        yield MemoryEventStore()
        return
    with _database(request.param, tmp_path) as url:
        s = open_store(url)
        try:
            yield s
        finally:
            s.close()
