"""How ``sla-ledger serve`` plugs observability into a ledger.

Three calls, all optional for the rest of the code base::

    interceptors, stop_metrics = observability.start(args.metrics_listen)
    ledger = await start_ledger(database, config, interceptors=interceptors,
                                observers=[observability.observer()])   # appends, lag, checkpoints
    observability.instrument(ledger)      # log size, database pool, SLA figures
    ...
    stop_metrics()

The observer reaches the write path through the port the composition root
passes in (``ledger.application.observer``); ``instrument`` only reads what
``ledger.server.bootstrap.Ledger`` exposes (``service``, ``store``, ``reports``).
Nothing replaces methods on built objects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import structlog

from ledger.application.claims import ClaimQuery, ClaimService
from ledger.application.observer import LedgerObserver
from ledger.application.reports import ReportService
from ledger.domain.access import Principal
from ledger.domain.errors import DomainError, TimelineViolation
from ledger.observability.db_pool import psycopg_pool_stats
from ledger.observability.grpc_interceptor import ObservabilityInterceptor
from ledger.observability.grpc_methods import ledger_grpc_methods
from ledger.observability.labels import UNKNOWN
from ledger.observability.listener import MetricsServer, start_metrics_server
from ledger.observability.metrics import LedgerMetrics
from ledger.observability.sla_snapshot import (
    CURRENT,
    PREVIOUS,
    AgreementSnapshot,
    SlaSource,
    claim_counts,
    snapshot_from_report,
)

log = structlog.get_logger("ledger.observability")

#: How long SLA figures computed for a scrape are reused.
SLA_CACHE_SECONDS = 30.0
#: Who the SLA collector reads reports as (reads everything, writes nothing).
METRICS_PRINCIPAL = Principal(name="metrics", org="", role="auditor")

#: "active" -> the metrics and listener of ``start`` (one per process).
_active: dict[str, tuple[LedgerMetrics, MetricsServer]] = {}
_INDEX = re.compile(r"events\[(\d+)\]")


def start(
    metrics_listen: str, metrics: LedgerMetrics | None = None
) -> tuple[list[grpc.aio.ServerInterceptor], Callable[[], None]]:
    """Create the metrics, serve them on ``metrics_listen`` and return the server
    interceptors (install them outermost) and a function that stops the listener."""
    m = metrics if metrics is not None else LedgerMetrics(sla_cache_seconds=SLA_CACHE_SECONDS)
    m.initialize_grpc_methods(ledger_grpc_methods())
    server = start_metrics_server(metrics_listen, m.registry)
    log.info(
        "metrics listening", url=f"http://{metrics_listen.rsplit(':', 1)[0]}:{server.port}/metrics"
    )
    _active["active"] = (m, server)

    def stop() -> None:
        server.close()
        if _active.get("active", (None,))[0] is m:
            del _active["active"]

    return [ObservabilityInterceptor(m)], stop


def active_metrics() -> LedgerMetrics | None:
    """The metrics ``start`` created (None when it was not called)."""
    active = _active.get("active")
    return None if active is None else active[0]


def active_metrics_port() -> int | None:
    """The port the listener of ``start`` is bound to (useful with port 0)."""
    active = _active.get("active")
    return None if active is None else active[1].port


class MetricsObserver(LedgerObserver):
    """Appends, stored events, projection lag and checkpoints as metrics."""

    def __init__(self, m: LedgerMetrics, clock: Callable[[], int] | None = None) -> None:
        self.m = m
        self.clock: Callable[[], int] = clock or (lambda: time.time_ns() // 1000)
        self.head = 0  # the last position this process stored (or was told of)

    def appended(self, events: Sequence[Any], results: Sequence[Any], seconds: float) -> None:
        # Results follow the request order; an event re-sent inside the batch
        # shares its id with the original, so count results, not ids.
        self.m.record_append(
            batch_size=len(events), duration_seconds=seconds,
            duplicate_types=[e.type for e, r in zip(events, results, strict=False) if r.duplicate])

    def rejected(self, events: Sequence[Any], error: DomainError, seconds: float) -> None:
        self.m.record_append(batch_size=len(events), duration_seconds=seconds,
                             rejected=[rejection_of(events, error)])

    def stored(self, events: Sequence[Any]) -> None:
        if events:
            self.head = max(self.head, events[-1].position)
        self.m.record_stored([e.type for e in events], log_size=self.head if events else None)

    def projected(self, name: str, position: int, recorded_at: int, count: int,
                  seconds: float) -> None:
        self.head = max(self.head, position)
        lag = max(self.clock() - recorded_at, 0) / 1e6 if position < self.head else 0.0
        self.m.record_projection(name, position=position, head=self.head, lag_seconds=lag)
        # A rebuild or a catch-up after downtime shows here as a ratio < 1.
        self.m.record_rebuild_progress(name, position, self.head)

    def checkpoint_signed(self, checkpoint: Any) -> None:
        issued = checkpoint.checkpoint.timestamp
        self.m.record_checkpoint(checkpoint.checkpoint.size, issued / 1e6 if issued else None)


def observer(metrics: LedgerMetrics | None = None) -> LedgerObserver:
    """The observer feeding ``metrics`` (default: those of ``start``; a no-op without)."""
    m = metrics if metrics is not None else active_metrics()
    return LedgerObserver() if m is None else MetricsObserver(m)


def instrument(ledger: Any, metrics: LedgerMetrics | None = None, reports: Any = None) -> None:
    """Report the ledger's log size, database pool and SLA figures to ``metrics``
    (default: those of ``start``; nothing happens if there are none), and give
    the ledger's metrics observer its clock and the head of the log.

    ``reports``: the application's ReportService (default: the ledger's own).
    """
    m = metrics if metrics is not None else active_metrics()
    if m is None:
        return
    service = ledger.service
    head = ledger.store.max_position()
    _observe_log(ledger, m, head)
    _observe_read_models(ledger, m, head)
    integrity = getattr(ledger, "integrity", None)
    if integrity is not None:
        _observe_integrity(integrity, m)
    readiness = getattr(ledger, "readiness", None)
    if readiness is not None:
        _observe_readiness(readiness, m)
    reports = reports if reports is not None else getattr(ledger, "reports", None)
    if reports is not None:
        m.set_sla_source(sla_source(reports, service))



def _observe_log(ledger: Any, m: LedgerMetrics, head: int) -> None:
    """The log's size and, on PostgreSQL, its connection pool; the ledger's
    metrics observer gets the service clock and the head."""
    m.set_log_size(head)
    for each in getattr(getattr(ledger, "observers", None), "observers", ()):
        if isinstance(each, MetricsObserver) and each.m is m:
            each.clock = ledger.service.clock
            each.head = max(each.head, head)
    datastore = getattr(getattr(ledger.store, "recorder", None), "datastore", None)
    pool: Any = getattr(datastore, "pool", None)
    if callable(getattr(pool, "get_stats", None)):  # PostgreSQL: a psycopg_pool pool
        m.set_db_pool_source(psycopg_pool_stats(pool))


def _observe_read_models(ledger: Any, m: LedgerMetrics, head: int) -> None:
    """The projections' positions against the head, and the latest signed checkpoint."""
    runner = getattr(ledger, "runner", None)
    if runner is not None:
        for name, position in runner.positions().items():
            m.record_projection(name, position=position, head=head)
    audit = getattr(ledger, "audit", None)
    if audit is not None:
        latest = audit.log.latest()
        if latest is not None:
            MetricsObserver(m).checkpoint_signed(latest)


def _observe_integrity(integrity: Any, m: LedgerMetrics) -> None:
    """``ledger_integrity_breach_position``: 0 while the stored log matches the
    leaves the ledger recorded, else the first altered position (alerted)."""
    m.integrity_breach.set_function(lambda: float(integrity.breach.position) if integrity.breach else 0.0)

def _observe_readiness(readiness: Any, m: LedgerMetrics) -> None:
    """Fleet gauges (which replica leads, how far behind it is, whether it is
    ready) and the listener's /readyz."""
    from prometheus_client import Gauge

    def state() -> Any:
        return readiness.state

    try:
        leader = Gauge("ledger_leader", "1 on the replica that projects and signs checkpoints",
                       registry=m.registry)
    except ValueError:  # instrumented already
        return
    leader.set_function(lambda: 1.0 if readiness.leading() else 0.0)
    lag = Gauge("ledger_replica_lag_events", "Events between the head of the log and the "
                "slowest read model this replica answers from", registry=m.registry)
    lag.set_function(lambda: float(state().lag))
    ready = Gauge("ledger_ready", "1 while this replica reports ready (database reachable, "
                  "read models not far behind)", registry=m.registry)
    ready.set_function(lambda: 1.0 if state().ready else 0.0)
    active = _active.get("active")
    if active is not None and active[0] is m:
        active[1].probes["/readyz"] = lambda: (state().ready, state().reason or "ready")


def rejection_of(events: Sequence[Any], exc: DomainError) -> tuple[str, str]:
    """(type of the refused event, rule id) of a refused append."""
    if isinstance(exc, TimelineViolation):
        reason = exc.rule
    else:
        reason = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    index = getattr(exc, "index", None)
    if index is None:
        found = _INDEX.search(str(getattr(exc, "field", "")) or str(exc))
        index = int(found.group(1)) if found else None
    event_type = events[index].type if index is not None and 0 <= index < len(events) else UNKNOWN
    return event_type, reason


def current_period(timezone: str, now_micros: int) -> str:
    """``YYYY-MM`` of the calendar month containing ``now`` in ``timezone``."""
    instant = datetime.fromtimestamp(now_micros / 1_000_000, tz=UTC)
    return instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


def previous_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def sla_source(reports: Any, service: Any) -> SlaSource:
    """The reports of every agreement for the current and the previous month,
    evaluated now, as SLA snapshots."""

    claims = ClaimService(reports) if isinstance(reports, ReportService) else None

    def read() -> list[AgreementSnapshot]:
        now = service.clock()
        snapshots = []
        for agreement_id in service.agreement_ids(METRICS_PRINCIPAL):
            history = service.agreement(agreement_id)
            if history is None:
                continue
            current = current_period(history.current.timezone, now)
            for which, period in ((CURRENT, current), (PREVIOUS, previous_period(current))):
                try:
                    report = reports.period_report(
                        METRICS_PRINCIPAL, agreement_id, period, now, None
                    )
                except DomainError as exc:  # e.g. a period before the agreement
                    log.debug(
                        "no SLA figures", agreement=agreement_id, period=period, error=str(exc)
                    )
                    continue
                snapshot = snapshot_from_report(report, period=which)
                if which == CURRENT and claims is not None:
                    open_by_org, next_deemed = claim_counts(claims.claims(
                        METRICS_PRINCIPAL, ClaimQuery(agreement_id=agreement_id), now))
                    # Every party gets a series, 0 when nothing awaits it.
                    parties = dict.fromkeys(history.current.parties(), 0)
                    snapshot = replace(snapshot, claims_open=parties | open_by_org,
                                       claims_next_deemed=next_deemed)
                snapshots.append(snapshot)
        return snapshots

    return read
