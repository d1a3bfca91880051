"""Shared fixtures: `database_url` (every store test runs on SQLite and on
PostgreSQL), `any_store` (those and the in-memory store) and a fake clock (no
test reads the wall clock). The helpers behind them live in tests/support
(postgres.py, clock.py).

PostgreSQL: SLA_LEDGER_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test)
must be reachable; otherwise the postgres params are skipped, unless
SLA_LEDGER_REQUIRE_POSTGRES=1 (as CI sets), in which case they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ledger.adapters.eventstore import EventStore, open_store
from ledger.adapters.memory_store import MemoryEventStore
from ledger.domain.instants import parse_instant
from tests.support.clock import FIXED_NOW, FakeClock
from tests.support.postgres import PG_URL, private_schema

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
