"""Every Prometheus metric of the ledger, defined in this one module.

``LedgerMetrics`` owns a dedicated ``CollectorRegistry`` (never the global
default), so a test builds a fresh one and sees only its own samples. The
application reports through its ``record_*``/``set_*`` methods; the SLA engine
feeds ``SlaCollector`` through a callable that is called at scrape time.

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

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import grpc
from grpc_health.v1 import health_pb2
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
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ledger.domain.events import PAYLOAD_TYPES
from ledger.v1 import agreements_pb2, audit_pb2, incidents_pb2, log_pb2, reports_pb2

_log = logging.getLogger(__name__)

#: Loopback by default: the metrics listener has no authentication.
DEFAULT_METRICS_ADDRESS = "127.0.0.1:9464"

#: prometheus.DefBuckets of Go, as go-grpc-prometheus uses them.
GRPC_HANDLING_BUCKETS: tuple[float, ...] = (
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

GRPC_TYPES = ("unary", "client_stream", "server_stream", "bidi_stream")

#: grpc.StatusCode -> the code name Go's codes.Code.String() gives (go-grpc-prometheus).
GRPC_CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

#: Label value for anything not allowed into a bounded label.
OTHER = "other"
UNKNOWN = "unknown"

_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class BoundedLabel:
    """Maps arbitrary input to a bounded set of label values.

    Values in ``allowed`` pass; otherwise a value must look like an identifier
    and at most ``max_values`` distinct ones are admitted, after which (and for
    anything malformed) the value is ``overflow``.
    """

    def __init__(
        self,
        allowed: Iterable[str] = (),
        *,
        max_values: int = 64,
        overflow: str = OTHER,
        closed: bool = False,
    ) -> None:
        self._allowed = frozenset(allowed)
        self._seen: set[str] = set()
        self._max = max_values
        self._overflow = overflow
        self._closed = closed
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._allowed:
            return value
        if self._closed or not _IDENT.match(value):
            return self._overflow
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._max:
                return self._overflow
            self._seen.add(value)
            return value


def rejection_reason(reason: str) -> str:
    """The rule id of a rejection reason: ``"not_paused: clock_resumed ..."`` -> ``not_paused``."""
    return reason.split(":", 1)[0].strip().lower() or UNKNOWN


class GrpcMethod(NamedTuple):
    service: str
    method: str
    type: str


def grpc_type(request_streaming: bool, response_streaming: bool) -> str:
    if request_streaming:
        return "bidi_stream" if response_streaming else "client_stream"
    return "server_stream" if response_streaming else "unary"


def grpc_methods(service_descriptors: Iterable[Any]) -> list[GrpcMethod]:
    """The methods of protobuf ``ServiceDescriptor``s, for ``initialize_grpc_methods``."""
    return [
        GrpcMethod(
            service.full_name,
            method.name,
            grpc_type(method.client_streaming, method.server_streaming),
        )
        for service in service_descriptors
        for method in service.methods
    ]


def ledger_grpc_methods() -> list[GrpcMethod]:
    """Every method of the ledger.v1 services (plus the standard health service)."""
    files = (agreements_pb2, audit_pb2, incidents_pb2, log_pb2, reports_pb2, health_pb2)
    return grpc_methods(
        service for module in files for service in module.DESCRIPTOR.services_by_name.values()
    )


# --------------------------------------------------------------------------- SLA


@dataclass(frozen=True, slots=True)
class ServiceLevelSnapshot:
    """One service level of one agreement in the current period, as plain data.

    SLI in the form burn-rate rules need (Sloth "events", Pyrra "ratio"):
    ``valid`` counts what the objective is judged on and ``bad_by_provider``
    what went wrong, charged to the accountable provider. For response and
    resolution levels the unit is incidents (valid = met + missed, bad = each
    missed incident apportioned by the period shares); for availability levels
    it is seconds (valid = scheduled seconds, bad = downtime seconds by provider).
    Both restart at each period; the SLI counters add them up across periods.
    """

    service_level: str
    kind: str
    objective: float
    attainment: float | None
    achieved: bool
    valid: float
    bad_by_provider: Mapping[str, float] = field(default_factory=dict)
    breaches: int = 0
    """Missed incidents (response/resolution); 1 if not achieved (availability)."""
    incidents_at_risk: int = 0
    """Clocks still running (pending) that can still miss."""
    credits_by_provider: Mapping[str, int] = field(default_factory=dict)
    """Credit accrued so far, in minor units of ``AgreementSnapshot.currency``."""

    @property
    def error_budget_remaining(self) -> float:
        """Share of the error budget (1 - objective) not yet spent; negative when overspent."""
        if self.attainment is None:
            return 1.0
        budget = 1.0 - self.objective
        spent = 1.0 - self.attainment
        if budget <= 0.0:
            return 1.0 if spent <= 0.0 else 0.0
        return round(1.0 - spent / budget, 9)


CURRENT = "current"
PREVIOUS = "previous"
PERIODS = (CURRENT, PREVIOUS)


@dataclass(frozen=True, slots=True)
class AgreementSnapshot:
    """One agreement's figures for one period.

    ``period`` is relative, so series keep their identity across months:
    ``current`` (the month in progress: alerts and burn rates) or ``previous``
    (the month just ended: its final attainment and credits, while invoices
    are drawn up).
    """

    agreement: str
    period_start: float
    """Unix seconds."""
    period_end: float
    evaluated_at: float
    currency: str
    service_levels: Sequence[ServiceLevelSnapshot]
    period: str = CURRENT
    claims_open: Mapping[str, int] = field(default_factory=dict)
    """Org -> claims not in effect still awaiting its answer (any period)."""
    claims_next_deemed: Mapping[str, float] = field(default_factory=dict)
    """Org -> unix seconds at which the first of those is deemed accepted."""


def claim_counts(claims: Iterable[Mapping[str, Any]],
                 ) -> tuple[dict[str, int], dict[str, float]]:
    """(open claims per org, first deemed instant per org) of claims as
    ListClaims gives them (those not in effect)."""
    open_by_org: dict[str, int] = {}
    next_deemed: dict[str, float] = {}
    for claim in claims:
        for org in claim["awaiting"]:
            if org in claim["disputed_by"]:
                continue
            open_by_org[org] = open_by_org.get(org, 0) + 1
            if claim["deemed_at"]:
                at = _unix(claim["deemed_at"])
                next_deemed[org] = min(next_deemed.get(org, at), at)
    return open_by_org, next_deemed


SlaSource = Callable[[], Iterable[AgreementSnapshot]]
"""Called on the metrics HTTP thread at scrape time; must be thread-safe and quick."""

UNATTRIBUTED = "unattributed"


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ratio(text: str | None) -> float | None:
    return None if text in (None, "") else float(Decimal(str(text)))


def snapshot_from_report(
    report: Mapping[str, Any],
    incidents_at_risk: Mapping[str, int] | None = None,
    period: str = CURRENT,
) -> AgreementSnapshot:
    """An ``AgreementSnapshot`` from a period report in the scenario format
    (``GetPeriodReportResponse.report_json`` decoded).

    ``incidents_at_risk`` (service level id -> running clocks) overrides the
    report's ``pending`` counts; ``period``: ``current`` or ``previous``.
    """
    currency = str(report.get("credits_total", {}).get("currency", ""))
    levels = []
    for sl in report["service_levels"]:
        objective = float(Decimal(str(sl["objective"])))
        attainment = _ratio(sl.get("attainment"))
        bad: dict[str, float] = {}
        if sl["kind"] == "availability":
            valid = float(Decimal(str(sl.get("scheduled_seconds") or 0)))
            downtime = float(Decimal(str(sl.get("downtime_seconds") or 0)))
            for provider, seconds in (sl.get("downtime_by_provider_seconds") or {}).items():
                bad[provider] = float(Decimal(str(seconds)))
            breaches = 0 if sl["achieved"] else 1
            at_risk = 0
            bad_total = downtime
        else:
            missed = int(sl.get("missed", 0))
            valid = float(int(sl.get("met", 0)) + missed)
            for provider, share in (sl.get("shares") or {}).items():
                bad[provider] = missed * float(Decimal(str(share)))
            breaches = missed
            at_risk = int(sl.get("pending", 0))
            bad_total = float(missed)
        rest = bad_total - sum(bad.values())
        if rest > 1e-6:
            bad[UNATTRIBUTED] = rest
        if incidents_at_risk is not None:
            at_risk = incidents_at_risk.get(sl["id"], 0)
        credit = sl.get("credit_split") or {}
        levels.append(
            ServiceLevelSnapshot(
                service_level=str(sl["id"]),
                kind=str(sl["kind"]),
                objective=objective,
                attainment=attainment,
                achieved=bool(sl["achieved"]),
                valid=valid,
                bad_by_provider=bad,
                breaches=breaches,
                incidents_at_risk=at_risk,
                credits_by_provider={p: int(v) for p, v in credit.items()},
            )
        )
    return AgreementSnapshot(
        agreement=str(report["agreement"]),
        period_start=_unix(report["period_start"]),
        period_end=_unix(report["period_end"]),
        evaluated_at=_unix(report["evaluated_at"]),
        currency=currency,
        service_levels=tuple(levels),
        period=period,
    )


_AG = ("agreement", "period")
_SL = ("agreement", "service_level", "kind", "period")

#: name -> (type, help, labels) of every family SlaCollector exposes.
SLA_FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ledger_sla_objective_ratio": ("gauge", "Objective of the service level (0-1).", _SL),
    "ledger_sla_attainment_ratio": (
        "gauge",
        "Attainment in the period so far (0-1); absent while nothing counted.",
        _SL,
    ),
    "ledger_sla_achieved": ("gauge", "1 if the service level is achieved so far, else 0.", _SL),
    "ledger_sla_breaches": (
        "gauge",
        "Breaches this period: missed incidents (response/resolution),"
        " 1 if not achieved (availability).",
        _SL,
    ),
    "ledger_sla_incidents_at_risk": (
        "gauge",
        "Open incidents whose clock is still running and can still miss.",
        _SL,
    ),
    "ledger_sla_error_budget_remaining_ratio": (
        "gauge",
        "Share of the error budget (1 - objective) left this period; negative when overspent.",
        _SL,
    ),
    "ledger_sla_period_sli_valid": (
        "gauge",
        "SLI events this period: met+missed incidents, or scheduled seconds (availability).",
        _SL,
    ),
    "ledger_sla_period_sli_bad": (
        "gauge",
        "SLI bad events this period charged to a provider: missed incidents apportioned by"
        " share, or downtime seconds (availability).",
        (*_SL, "provider"),
    ),
    # Counters never reset at a month's end: each period's figures are added
    # to those of the periods before (since the process started), so rate()
    # and the burn-rate rules work across the boundary.
    "ledger_sla_sli_valid": (
        "counter",
        "SLI events so far, across periods: met+missed incidents, or scheduled seconds.",
        _SL[:-1],
    ),
    "ledger_sla_sli_bad": (
        "counter",
        "SLI bad events so far, across periods, charged to a provider.",
        (*_SL[:-1], "provider"),
    ),
    "ledger_sla_credits_accrued_minor_units": (
        "gauge",
        "Service credit accrued this period so far, per provider, in minor currency units.",
        (*_SL, "provider", "currency"),
    ),
    "ledger_sla_period_start_timestamp_seconds": (
        "gauge",
        "Start of the period.",
        _AG,
    ),
    "ledger_sla_period_end_timestamp_seconds": (
        "gauge",
        "End of the period.",
        _AG,
    ),
    "ledger_sla_evaluated_timestamp_seconds": (
        "gauge",
        "Evaluation instant of the figures.",
        _AG,
    ),
    "ledger_claims_open": (
        "gauge",
        "Claims (sla-semantics section 11) not in effect that still await the org's answer.",
        ("agreement", "org"),
    ),
    "ledger_claims_next_deemed_timestamp_seconds": (
        "gauge",
        "When the org's first open claim is deemed accepted unless it disputes it.",
        ("agreement", "org"),
    ),
    "ledger_sla_collector_up": (
        "gauge",
        "1 if the last scrape read the SLA figures, 0 if the source failed.",
        (),
    ),
    "ledger_sla_collector_duration_seconds": (
        "gauge",
        "Time the SLA source took at the last scrape.",
        (),
    ),
}


class SlaCollector:
    """Computes the SLA families at scrape time from ``source``.

    ``cache_seconds`` reuses a result for that long (several Prometheus servers,
    or a slow engine). A failing source yields ``ledger_sla_collector_up 0`` and
    no SLA samples, never a failed scrape.
    """

    def __init__(self, source: SlaSource | None = None, cache_seconds: float = 0.0) -> None:
        self._source = source
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, list[AgreementSnapshot], float] | None = None
        self._lock = threading.Lock()
        self._counters = _MonotonicSli()

    def set_source(self, source: SlaSource | None) -> None:
        with self._lock:
            self._source = source
            self._cached = None

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        up, took, snapshots = self._read()
        families["ledger_sla_collector_up"].add_metric([], 1.0 if up else 0.0)
        families["ledger_sla_collector_duration_seconds"].add_metric([], took)
        for agreement in snapshots:
            self._add(families, agreement)
        with self._lock:
            for key, total in self._counters.totals([a for a in snapshots if a.period == CURRENT]):
                name, labels = key[0], list(key[1:])
                families[name].add_metric(labels, total)
        return list(families.values())

    def _read(self) -> tuple[bool, float, list[AgreementSnapshot]]:
        with self._lock:
            source = self._source
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self._cache_seconds:
                return True, self._cached[2], self._cached[1]
            if source is None:
                return True, 0.0, []
            started = time.perf_counter()
            try:
                snapshots = list(source())
            except Exception:
                _log.exception("SLA metrics source failed")
                return False, time.perf_counter() - started, []
            took = time.perf_counter() - started
            self._cached = (now, snapshots, took)
            return True, took, snapshots

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for name, (kind, doc, labels) in SLA_FAMILIES.items():
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            families[name] = cls(name, doc, labels=labels)
        return families

    @staticmethod
    def _add(
        f: Mapping[str, GaugeMetricFamily | CounterMetricFamily], a: AgreementSnapshot
    ) -> None:
        agreement = [a.agreement, a.period]
        f["ledger_sla_period_start_timestamp_seconds"].add_metric(agreement, a.period_start)
        f["ledger_sla_period_end_timestamp_seconds"].add_metric(agreement, a.period_end)
        f["ledger_sla_evaluated_timestamp_seconds"].add_metric(agreement, a.evaluated_at)
        for org, count in sorted(a.claims_open.items()):
            f["ledger_claims_open"].add_metric([a.agreement, org], count)
        for org, at in sorted(a.claims_next_deemed.items()):
            f["ledger_claims_next_deemed_timestamp_seconds"].add_metric([a.agreement, org], at)
        for sl in a.service_levels:
            key = [a.agreement, sl.service_level, sl.kind, a.period]
            f["ledger_sla_objective_ratio"].add_metric(key, sl.objective)
            if sl.attainment is not None:
                f["ledger_sla_attainment_ratio"].add_metric(key, sl.attainment)
            f["ledger_sla_achieved"].add_metric(key, 1.0 if sl.achieved else 0.0)
            f["ledger_sla_breaches"].add_metric(key, sl.breaches)
            f["ledger_sla_incidents_at_risk"].add_metric(key, sl.incidents_at_risk)
            f["ledger_sla_error_budget_remaining_ratio"].add_metric(key, sl.error_budget_remaining)
            f["ledger_sla_period_sli_valid"].add_metric(key, sl.valid)
            for provider, bad in sorted(sl.bad_by_provider.items()):
                f["ledger_sla_period_sli_bad"].add_metric([*key, provider], bad)
            for provider, minor in sorted(sl.credits_by_provider.items()):
                f["ledger_sla_credits_accrued_minor_units"].add_metric(
                    [*key, provider, a.currency], minor
                )


class _MonotonicSli:
    """SLI counters that only grow: the current period's value on top of the
    final values of the periods seen end before it. A correction that lowers
    a figure within the period (a retraction) holds the counter where it was
    rather than resetting it; the period gauges show the corrected figure."""

    def __init__(self) -> None:
        self.carried: dict[tuple[str, ...], float] = {}
        self.seen: dict[tuple[str, ...], tuple[float, float]] = {}  # key -> (period start, high)

    def totals(self, current: Sequence[AgreementSnapshot]) -> list[tuple[tuple[str, ...], float]]:
        out: list[tuple[tuple[str, ...], float]] = []
        for a in current:
            for sl in a.service_levels:
                base = (a.agreement, sl.service_level, sl.kind)
                values: list[tuple[tuple[str, ...], float]] = [(("ledger_sla_sli_valid", *base), sl.valid)]
                values += [(("ledger_sla_sli_bad", *base, provider), bad)
                           for provider, bad in sorted(sl.bad_by_provider.items())]
                for key, value in values:
                    out.append((key, self._total(key, a.period_start, value)))
        return out

    def _total(self, key: tuple[str, ...], period_start: float, value: float) -> float:
        start, high = self.seen.get(key, (period_start, 0.0))
        if period_start > start:  # a new period: the last one's figure is final
            self.carried[key] = self.carried.get(key, 0.0) + high
            high = 0.0
        elif period_start < start:  # an answer about an older period: ignore it
            return self.carried.get(key, 0.0) + high
        high = max(high, value)
        self.seen[key] = (period_start, high)
        return self.carried.get(key, 0.0) + high


# --------------------------------------------------------------------------- DB pool


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


# --------------------------------------------------------------------------- the registry


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


# --------------------------------------------------------------------------- HTTP listener


class MetricsServer:
    """The running metrics listener; ``close()`` stops it."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        #: path -> () -> (ok, text): /healthz, and /readyz once a ledger is wired
        self.probes: dict[str, Callable[[], tuple[bool, str]]] = {}

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port). The host is required."""
    host, sep, port = address.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f"metrics address {address!r}: expected host:port, e.g. {DEFAULT_METRICS_ADDRESS}"
        )
    return host, int(port)


def start_metrics_server(address: str, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` on ``http://address/metrics`` from a daemon thread,
    with ``/healthz`` (the process answers) and ``/readyz`` (the replica's
    readiness, ledger.application.readiness: 200 or 503 with the reason).

    Port 0 binds an ephemeral port (``MetricsServer.port``). There is no
    authentication: keep it on loopback or a private network.
    """
    from wsgiref.simple_server import make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

    host, port = parse_address(address)
    metrics_app = make_wsgi_app(registry)
    probes: dict[str, Callable[[], tuple[bool, str]]] = {"/healthz": lambda: (True, "alive")}

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            return metrics_app(environ, start_response)
        # Without a ledger wired (tools, tests) there is nothing to be unready about.
        ok, reason = probes.get(path, lambda: (True, "ready"))()
        start_response("200 OK" if ok else "503 Service Unavailable",
                       [("Content-Type", "text/plain; charset=utf-8")])
        return [(reason + "\n").encode()]

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port)[0][0]

    httpd = make_server(host, port, app, Server, handler_class=_SilentHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server = MetricsServer(httpd, thread)
    server.probes = probes
    return server
