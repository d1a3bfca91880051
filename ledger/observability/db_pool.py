"""Database pool gauges, read from the pool at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, Protocol

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

_log = logging.getLogger(__name__)


class DbPoolStats(NamedTuple):
    in_use: int
    waiting: int
    max_size: int


class _PsycopgPool(Protocol):
    def get_stats(self) -> Mapping[str, int]: ...


def psycopg_pool_stats(pool: _PsycopgPool) -> Callable[[], DbPoolStats]:
    """A ``set_db_pool_source`` source reading a psycopg_pool ConnectionPool."""

    def read() -> DbPoolStats:
        stats = pool.get_stats()
        size = stats.get("pool_size", 0)
        return DbPoolStats(
            in_use=size - stats.get("pool_available", 0),
            waiting=stats.get("requests_waiting", 0),
            max_size=stats.get("pool_max", size),
        )

    return read


class _DbPoolCollector:
    def __init__(self) -> None:
        self.source: Callable[[], DbPoolStats] | None = None
        self.last = DbPoolStats(0, 0, 0)

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        stats = self.last
        if self.source is not None:
            try:
                stats = self.source()
            except Exception:
                _log.exception("database pool stats failed")
        return self._families(stats)

    @staticmethod
    def _families(stats: DbPoolStats | None) -> list[Metric]:
        specs = (
            ("ledger_db_pool_connections_in_use", "Database connections checked out.", "in_use"),
            ("ledger_db_pool_requests_waiting", "Requests waiting for a connection.", "waiting"),
            ("ledger_db_pool_connections_max", "Maximum size of the pool.", "max_size"),
        )
        return [
            GaugeMetricFamily(name, doc, value=None if stats is None else getattr(stats, attr))
            for name, doc, attr in specs
        ]
