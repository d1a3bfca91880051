"""Every Prometheus metric of the ledger, defined in this one module.

``LedgerMetrics`` owns a dedicated ``CollectorRegistry`` (never the global
default), so a test builds a fresh one and sees only its own samples. The
application reports through its ``record_*``/``set_*`` methods; the SLA engine
feeds ``SlaCollector`` (``sla_collector``) through a callable that is called at
scrape time. Label bounds are in ``labels``, the gRPC catalogue in ``grpc_methods``,
the pool gauges in ``db_pool`` and the HTTP listener in ``listener``.

Label values stay bounded: gRPC labels come from registered handlers only,
event types from the domain's catalogue, reasons, projection names and other
free-form values must look like identifiers and are capped per label (the
overflow is reported as ``other``). Agreement, service level and provider ids
come from registered agreements, which an operator controls.

Metric families (see docs/operations.md for the alerts built on them):

gRPC (go-grpc-prometheus names, labels and code spellings)
    grpc_server_started_total, grpc_server_handled_total, grpc_server_handling_seconds,
    grpc_server_msg_received_total, grpc_server_msg_sent_total
Ledger write side
    ledger_events_appended_total{type}, ledger_events_rejected_total{type,reason},
    ledger_events_duplicate_total{type}, ledger_append_batch_size, ledger_append_duration_seconds,
    ledger_log_size_events, ledger_checkpoint_size_events, ledger_checkpoint_timestamp_seconds,
    ledger_db_pool_connections_in_use, ledger_db_pool_connections_max,
    ledger_db_pool_requests_waiting
Projections
    ledger_projection_position{projection}, ledger_projection_lag_events{projection},
    ledger_projection_lag_seconds{projection}, ledger_projection_rebuild_progress_ratio{projection}
SLA (scrape time, ``SlaCollector``)
    see ``SLA_FAMILIES``; the SLI counters carry no period and never reset at a
    month's end (the period's own figures are the ``ledger_sla_period_*`` gauges)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.metrics_core import Metric

from ledger.domain.events import PAYLOAD_TYPES
from ledger.observability.db_pool import DbPoolStats, _DbPoolCollector
from ledger.observability.grpc_methods import GRPC_CODE_NAMES, GRPC_HANDLING_BUCKETS, GrpcMethod
from ledger.observability.labels import UNKNOWN, BoundedLabel, rejection_reason
from ledger.observability.sla_collector import SlaCollector
from ledger.observability.sla_snapshot import SlaSource

APPEND_DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_SIZE_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


class LedgerMetrics:
    """All ledger metrics on one registry. Thread-safe; cheap to call on hot paths."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        sla_source: SlaSource | None = None,
        sla_cache_seconds: float = 5.0,
        process_metrics: bool = True,
    ) -> None:
        # No `_created` series: nothing reads them and they double the
        # counter series (prometheus_client's switch is process-wide).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

        grpc_labels = ("grpc_type", "grpc_service", "grpc_method")
        self.grpc_started = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            grpc_labels,
            registry=r,
        )
        self.grpc_handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*grpc_labels, "grpc_code"),
            registry=r,
        )
        self.grpc_handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level"
            " handled by the server.",
            grpc_labels,
            buckets=GRPC_HANDLING_BUCKETS,
            registry=r,
        )
        self.grpc_msg_received = Counter(
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            grpc_labels,
            registry=r,
        )
        self.grpc_msg_sent = Counter(
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server.",
            grpc_labels,
            registry=r,
        )

        self.events_appended = Counter(
            "ledger_events_appended_total", "Events stored, by type.", ("type",), registry=r
        )
        self.events_rejected = Counter(
            "ledger_events_rejected_total",
            "Events refused, by type and rule id (nothing of their batch is stored).",
            ("type", "reason"),
            registry=r,
        )
        self.events_duplicate = Counter(
            "ledger_events_duplicate_total",
            "Re-sent events (known event_id, identical content) that stored nothing.",
            ("type",),
            registry=r,
        )
        self.append_batch_size = Histogram(
            "ledger_append_batch_size",
            "Events per append call.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.append_duration = Histogram(
            "ledger_append_duration_seconds",
            "Time to validate and store one append call.",
            buckets=APPEND_DURATION_BUCKETS,
            registry=r,
        )
        self.log_size = Gauge(
            "ledger_log_size_events", "Events in the global log (last position).", registry=r
        )
        self.checkpoint_size = Gauge(
            "ledger_checkpoint_size_events",
            "Tree size of the last signed checkpoint.",
            registry=r,
        )
        self.checkpoint_timestamp = Gauge(
            "ledger_checkpoint_timestamp_seconds",
            "When the last signed checkpoint was issued (0 = none yet).",
            registry=r,
        )
        self.integrity_breach = Gauge(
            "ledger_integrity_breach_position",
            "First log position found altered, missing or out of place (0: none).",
            registry=r,
        )
        self._db_pool = _DbPoolCollector()
        r.register(self._db_pool)

        self.projection_position = Gauge(
            "ledger_projection_position",
            "Last log position a projection has processed.",
            ("projection",),
            registry=r,
        )
        self.projection_lag_events = Gauge(
            "ledger_projection_lag_events",
            "Events in the log the projection has not processed yet.",
            ("projection",),
            registry=r,
        )
        self.projection_lag_seconds = Gauge(
            "ledger_projection_lag_seconds",
            "Age of the oldest event the projection has not processed (0 when caught up).",
            ("projection",),
            registry=r,
        )
        self.projection_rebuild_progress = Gauge(
            "ledger_projection_rebuild_progress_ratio",
            "Progress of a projection rebuild (0-1; 1 when not rebuilding).",
            ("projection",),
            registry=r,
        )

        self.sla = SlaCollector(sla_source, cache_seconds=sla_cache_seconds)
        r.register(self.sla)

        self._event_type = BoundedLabel(PAYLOAD_TYPES, overflow=UNKNOWN, closed=True)
        self._reason = BoundedLabel(max_values=64)
        self._projection = BoundedLabel(max_values=32)

    # ---------------------------------------------------------------- gRPC

    def initialize_grpc_methods(self, methods: Iterable[GrpcMethod]) -> None:
        """Create the zero series of every method and code, as go-grpc-prometheus does,
        so rates and ratios exist before the first call."""
        for m in methods:
            labels = (m.type, m.service, m.method)
            self.grpc_started.labels(*labels)
            self.grpc_handling_seconds.labels(*labels)
            self.grpc_msg_received.labels(*labels)
            self.grpc_msg_sent.labels(*labels)
            for code in GRPC_CODE_NAMES.values():
                self.grpc_handled.labels(*labels, code)

    # ---------------------------------------------------------------- write side

    def record_stored(self, event_types: Sequence[str], log_size: int | None = None) -> None:
        """Events the log gained in one commit (any write: service events, agreements,
        maintenance), and the log size (last position) after it."""
        for event_type in event_types:
            self.events_appended.labels(self._event_type(event_type)).inc()
        if log_size is not None:
            self.log_size.set(log_size)

    def record_append(
        self,
        *,
        batch_size: int,
        duration_seconds: float,
        duplicate_types: Sequence[str] = (),
        rejected: Sequence[tuple[str, str]] = (),
    ) -> None:
        """One append call (AppendEvents): how many events it carried, how long it
        took, the types of the re-sent duplicates it answered, and the
        (type, reason) of refused events. ``reason`` is a rule id, or a message
        that starts with one (``"not_paused: clock_resumed while not paused"``).
        The stored events are reported by ``record_stored``."""
        for event_type in duplicate_types:
            self.events_duplicate.labels(self._event_type(event_type)).inc()
        for event_type, reason in rejected:
            self.events_rejected.labels(
                self._event_type(event_type), self._reason(rejection_reason(reason))
            ).inc()
        if batch_size > 0:
            self.append_batch_size.observe(batch_size)
        self.append_duration.observe(duration_seconds)

    def set_log_size(self, events: int) -> None:
        self.log_size.set(events)

    def record_checkpoint(self, tree_size: int, issued_at: float | None = None) -> None:
        """A signed checkpoint was issued (or loaded at start): its tree size and
        Unix time (default now)."""
        self.checkpoint_size.set(tree_size)
        self.checkpoint_timestamp.set(time.time() if issued_at is None else issued_at)

    def set_db_pool(self, in_use: int, waiting: int, max_size: int = 0) -> None:
        self._db_pool.last = DbPoolStats(in_use, waiting, max_size)

    def set_db_pool_source(self, source: Callable[[], DbPoolStats] | None) -> None:
        """Read the pool at scrape time (e.g. ``psycopg_pool_stats(pool)``)."""
        self._db_pool.source = source

    # ---------------------------------------------------------------- projections

    def record_projection(
        self, projection: str, *, position: int, head: int, lag_seconds: float = 0.0
    ) -> None:
        """A projection processed up to ``position``; the log ends at ``head``;
        ``lag_seconds``: age of the oldest unprocessed event (0 when caught up)."""
        name = self._projection(projection)
        self.projection_position.labels(name).set(position)
        self.projection_lag_events.labels(name).set(max(head - position, 0))
        self.projection_lag_seconds.labels(name).set(
            max(lag_seconds, 0.0) if head > position else 0.0
        )

    def record_rebuild_progress(self, projection: str, processed: int, total: int) -> None:
        ratio = 1.0 if total <= 0 else min(processed / total, 1.0)
        self.projection_rebuild_progress.labels(self._projection(projection)).set(ratio)

    # ---------------------------------------------------------------- SLA

    def set_sla_source(self, source: SlaSource | None) -> None:
        self.sla.set_source(source)

    def metric_names(self) -> set[str]:
        """Every sample name this registry can expose (``_total``, ``_bucket``... included)."""
        names: set[str] = set()
        for family in self.registry.collect():
            names.update(_sample_names(family))
        return names


def _sample_names(family: Metric) -> Iterator[str]:
    name = family.name
    if family.type == "counter":
        yield f"{name}_total"
    elif family.type == "histogram":
        yield from (f"{name}_bucket", f"{name}_sum", f"{name}_count")
    elif family.type == "summary":
        yield from (name, f"{name}_sum", f"{name}_count")
    elif family.type == "info":
        yield f"{name}_info"
    else:
        yield name
    yield from (sample.name for sample in family.samples)
