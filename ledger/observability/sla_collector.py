"""The scrape-time SLA collector: the ``ledger_sla_*`` and ``ledger_claims_*``
families computed from ``AgreementSnapshot``s when Prometheus scrapes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ledger.observability.sla_snapshot import CURRENT, AgreementSnapshot, SlaSource

_log = logging.getLogger(__name__)

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
