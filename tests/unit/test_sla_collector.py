"""The scrape-time SLA collector: snapshots from the worked scenario's report,
null attainment and failures, SLI counters across periods, caching between
scrapes, and the metric names of every family."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ledger.domain.sla.report_json import period_report_from_dict
from ledger.observability.metrics import LedgerMetrics
from ledger.observability.sla_snapshot import (
    AgreementSnapshot,
    ServiceLevelSnapshot,
    snapshot_from_report,
)
from tests.support.metrics import expected_report, fresh, value

# --------------------------------------------------------------------------- SLA collector




def test_sla_collector_from_worked_scenario_report() -> None:
    report = expected_report()
    m = fresh()
    m.set_sla_source(lambda: [snapshot_from_report(period_report_from_dict(report))])
    sl = {
        "agreement": "herts-converged",
        "service_level": "p1-resolution",
        "kind": "resolution",
        "period": "current",
    }
    assert value(m, "ledger_sla_objective_ratio", **sl) == 0.95
    assert value(m, "ledger_sla_attainment_ratio", **sl) == 0.6
    assert value(m, "ledger_sla_achieved", **sl) == 0
    assert value(m, "ledger_sla_breaches", **sl) == 2
    assert value(m, "ledger_sla_period_sli_valid", **sl) == 5
    # two missed incidents apportioned 0.75 / 0.25 by custody
    assert value(m, "ledger_sla_period_sli_bad", provider="bt", **sl) == pytest.approx(1.5)
    assert value(m, "ledger_sla_period_sli_bad", provider="hp", **sl) == pytest.approx(0.5)
    counter = {k: v for k, v in sl.items() if k != "period"}
    assert value(m, "ledger_sla_sli_valid_total", **counter) == 5
    assert value(m, "ledger_sla_sli_bad_total", provider="bt", **counter) == pytest.approx(1.5)
    credit = {"currency": "GBP", **sl}
    assert value(m, "ledger_sla_credits_accrued_minor_units", provider="bt", **credit) == 23087558
    assert value(m, "ledger_sla_credits_accrued_minor_units", provider="hp", **credit) == 7695852
    # error budget 0.05, spent 0.4: 1 - 8 = -7
    assert value(m, "ledger_sla_error_budget_remaining_ratio", **sl) == pytest.approx(-7)

    net = {
        "agreement": "herts-converged",
        "service_level": "network-availability",
        "kind": "availability",
        "period": "current",
    }
    assert value(m, "ledger_sla_attainment_ratio", **net) == pytest.approx(0.992094017094)
    assert value(m, "ledger_sla_period_sli_valid", **net) == 2667600
    assert value(m, "ledger_sla_period_sli_bad", provider="bt", **net) == 14070
    assert value(m, "ledger_sla_period_sli_bad", provider="hp", **net) == 7020
    assert value(m, "ledger_sla_breaches", **net) == 1

    # credits per provider over the service levels add up to the report's totals
    for provider, total in report["credits_by_provider"].items():
        accrued = sum(
            s.value
            for f in m.registry.collect()
            if f.name == "ledger_sla_credits_accrued_minor_units"
            for s in f.samples
            if s.labels["provider"] == provider
        )
        assert accrued == total
    assert (
        value(
            m,
            "ledger_sla_period_end_timestamp_seconds",
            agreement="herts-converged",
            period="current",
        )
        == 1793491200
    )
    assert value(m, "ledger_sla_collector_up") == 1


def test_sla_collector_null_attainment_and_failures() -> None:
    m = fresh()
    level = ServiceLevelSnapshot(
        service_level="p4-response",
        kind="response",
        objective=0.9,
        attainment=None,
        achieved=True,
        valid=0,
        incidents_at_risk=3,
    )
    snapshot = AgreementSnapshot("a1", 0.0, 1.0, 0.5, "EUR", [level], period="previous")
    m.set_sla_source(lambda: [snapshot])
    labels = {
        "agreement": "a1",
        "service_level": "p4-response",
        "kind": "response",
        "period": "previous",
    }
    assert value(m, "ledger_sla_attainment_ratio", **labels) is None  # nothing counted yet
    assert value(m, "ledger_sla_error_budget_remaining_ratio", **labels) == 1
    assert value(m, "ledger_sla_incidents_at_risk", **labels) == 3

    def broken() -> list[AgreementSnapshot]:
        raise RuntimeError("engine down")

    m.set_sla_source(broken)
    text = generate_latest(m.registry).decode()  # the scrape itself never fails
    assert "ledger_sla_collector_up 0.0" in text
    assert "ledger_sla_objective_ratio{" not in text


def test_sli_counters_grow_across_periods_and_no_created_series() -> None:
    m = LedgerMetrics(CollectorRegistry(), process_metrics=False, sla_cache_seconds=0)
    snapshots: list[AgreementSnapshot] = []
    m.set_sla_source(lambda: snapshots)

    def month(start: float, valid: float, bad: float) -> AgreementSnapshot:
        level = ServiceLevelSnapshot(service_level="net", kind="availability", objective=0.999,
                                     attainment=1 - bad / valid, achieved=False, valid=valid,
                                     bad_by_provider={"bt": bad})
        return AgreementSnapshot("a1", start, start + 100.0, start + 50.0, "EUR", [level])

    counter = {"agreement": "a1", "service_level": "net", "kind": "availability"}
    seen = []
    for snapshot in (month(0, 100, 10), month(0, 150, 8), month(100, 20, 1), month(100, 30, 1)):
        snapshots[:] = [snapshot]
        seen.append((value(m, "ledger_sla_sli_valid_total", **counter),
                     value(m, "ledger_sla_sli_bad_total", provider="bt", **counter),
                     value(m, "ledger_sla_period_sli_bad", provider="bt", period="current", **counter)))
    # a retraction lowers the period's figure, never the counter; a new month adds on
    assert seen == [(100, 10, 10), (150, 10, 8), (170, 11, 1), (180, 11, 1)]
    m.record_append(batch_size=1, duration_seconds=0.01)
    text = generate_latest(m.registry).decode()
    assert "_created" not in text and "ledger_events_appended_total" in m.metric_names()


def test_sla_collector_caches_between_scrapes() -> None:
    m = LedgerMetrics(CollectorRegistry(), process_metrics=False, sla_cache_seconds=60)
    calls = []

    def source() -> list[AgreementSnapshot]:
        calls.append(1)
        return []

    m.set_sla_source(source)
    generate_latest(m.registry)
    generate_latest(m.registry)
    assert len(calls) == 1


def test_metric_names_cover_every_family() -> None:
    names = fresh().metric_names()
    for name in (
        "grpc_server_started_total",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "grpc_server_msg_received_total",
        "grpc_server_msg_sent_total",
        "ledger_events_appended_total",
        "ledger_events_rejected_total",
        "ledger_events_duplicate_total",
        "ledger_append_batch_size_bucket",
        "ledger_append_duration_seconds_bucket",
        "ledger_log_size_events",
        "ledger_checkpoint_size_events",
        "ledger_checkpoint_timestamp_seconds",
        "ledger_db_pool_connections_in_use",
        "ledger_db_pool_requests_waiting",
        "ledger_projection_position",
        "ledger_projection_lag_events",
        "ledger_projection_lag_seconds",
        "ledger_projection_rebuild_progress_ratio",
        "ledger_sla_attainment_ratio",
        "ledger_sla_objective_ratio",
        "ledger_sla_incidents_at_risk",
        "ledger_sla_breaches",
        "ledger_sla_credits_accrued_minor_units",
        "ledger_sla_error_budget_remaining_ratio",
        "ledger_sla_sli_valid_total",
        "ledger_sla_sli_bad_total",
    ):
        assert name in names, name
