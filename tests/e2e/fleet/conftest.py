"""A private PostgreSQL schema per fleet test (the replicas share it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import private_schema


@pytest.fixture
def pg_schema() -> Iterator[str]:
    with private_schema() as schema:
        yield schema
