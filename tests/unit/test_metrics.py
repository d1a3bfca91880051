"""Metrics: names and labels on a fresh registry, and the wiring that feeds
appends, the database pool and the SLA figures into it (the listener and the
gRPC interceptor on a real server: tests/e2e/test_metrics.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.sla.report_json import period_report_from_dict
from ledger.observability.db_pool import DbPoolStats, psycopg_pool_stats
from ledger.observability.grpc_methods import GRPC_CODE_NAMES, ledger_grpc_methods
from tests.support.metrics import expected_report, fresh, value

# --------------------------------------------------------------------------- registry


def test_fresh_registries_are_independent() -> None:
    a, b = fresh(), fresh()
    a.record_stored(["opened"], log_size=1)
    assert value(a, "ledger_events_appended_total", type="opened") == 1
    assert value(b, "ledger_events_appended_total", type="opened") is None
    assert value(b, "ledger_log_size_events") == 0


def test_write_side_metrics_names_and_labels() -> None:
    m = fresh()
    m.record_stored(["opened", "responded", "responded"], log_size=42)
    m.record_append(
        batch_size=4,
        duration_seconds=0.012,
        duplicate_types=["responded"],
        rejected=[("clock_resumed", "not_paused: clock_resumed while not paused")],
    )
    m.record_append(batch_size=1, duration_seconds=0.003)
    assert value(m, "ledger_events_appended_total", type="responded") == 2
    assert value(m, "ledger_events_duplicate_total", type="responded") == 1
    assert value(m, "ledger_events_rejected_total", type="clock_resumed", reason="not_paused") == 1
    assert value(m, "ledger_append_batch_size_count") == 2
    assert value(m, "ledger_append_batch_size_sum") == 5
    assert value(m, "ledger_append_duration_seconds_count") == 2
    assert value(m, "ledger_append_duration_seconds_bucket", le="0.005") == 1
    assert value(m, "ledger_log_size_events") == 42

    m.record_checkpoint(40, issued_at=1_700_000_000.0)
    assert value(m, "ledger_checkpoint_size_events") == 40
    assert value(m, "ledger_checkpoint_timestamp_seconds") == 1_700_000_000.0


def test_label_values_stay_bounded() -> None:
    m = fresh()
    m.record_stored(["no_such_type"])
    assert value(m, "ledger_events_appended_total", type="unknown") == 1
    m.record_append(
        batch_size=1,
        duration_seconds=0.0,
        rejected=[("opened", "Some free text with spaces")],
    )
    assert value(m, "ledger_events_rejected_total", type="opened", reason="other") == 1
    for i in range(100):
        m.record_append(batch_size=1, duration_seconds=0.0, rejected=[("opened", f"rule_{i}")])
    reasons = {
        s.labels["reason"]
        for f in m.registry.collect()
        if f.name == "ledger_events_rejected"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert len(reasons) <= 65  # 64 admitted + "other"
    assert "other" in reasons


def test_projection_metrics() -> None:
    m = fresh()
    m.record_projection("incidents", position=90, head=100, lag_seconds=2.5)
    m.record_projection("reports", position=100, head=100, lag_seconds=7.0)
    m.record_rebuild_progress("incidents", 25, 100)
    assert value(m, "ledger_projection_position", projection="incidents") == 90
    assert value(m, "ledger_projection_lag_events", projection="incidents") == 10
    assert value(m, "ledger_projection_lag_seconds", projection="incidents") == 2.5
    assert value(m, "ledger_projection_lag_seconds", projection="reports") == 0
    assert value(m, "ledger_projection_rebuild_progress_ratio", projection="incidents") == 0.25


def test_db_pool_setter_and_scrape_time_source() -> None:
    m = fresh()
    m.set_db_pool(in_use=3, waiting=1, max_size=10)
    assert value(m, "ledger_db_pool_connections_in_use") == 3
    assert value(m, "ledger_db_pool_requests_waiting") == 1

    class Pool:
        def get_stats(self) -> dict[str, int]:
            return {"pool_size": 5, "pool_available": 1, "requests_waiting": 2, "pool_max": 20}

    m.set_db_pool_source(psycopg_pool_stats(Pool()))
    assert value(m, "ledger_db_pool_connections_in_use") == 4
    assert value(m, "ledger_db_pool_requests_waiting") == 2
    assert value(m, "ledger_db_pool_connections_max") == 20
    m.set_db_pool_source(lambda: DbPoolStats(0, 0, 1))
    assert value(m, "ledger_db_pool_connections_max") == 1


def test_grpc_zero_series_for_every_ledger_method() -> None:
    m = fresh()
    methods = ledger_grpc_methods()
    m.initialize_grpc_methods(methods)
    services = {x.service for x in methods}
    assert {
        "ledger.v1.AgreementService",
        "ledger.v1.IncidentService",
        "ledger.v1.LogService",
        "ledger.v1.ReportService",
        "ledger.v1.AuditService",
    } <= services
    read_log = next(x for x in methods if x.method == "ReadLog")
    assert read_log.type == "server_stream"
    labels = {"grpc_type": "unary", "grpc_service": "ledger.v1.IncidentService"}
    for code in GRPC_CODE_NAMES.values():
        assert (
            value(
                m, "grpc_server_handled_total", grpc_method="AppendEvents", grpc_code=code, **labels
            )
            == 0
        )




# --------------------------------------------------------------------------- wiring


def test_observer_and_instrument_feed_appends_pool_and_sla_figures() -> None:
    from types import SimpleNamespace

    from ledger.domain.errors import InvalidArgument, OutOfRange, TimelineViolation
    from ledger.domain.instants import parse_instant
    from ledger.server import observability

    report = expected_report()
    # what the observer reads of an event (type, event_id, position) and of a result
    # (duplicate): stand-ins typed Any, as the observer only reads those attributes
    event: Any = SimpleNamespace

    class Service:
        def clock(self) -> int:
            return parse_instant("2026-11-05T00:00:00Z")

        def agreement_ids(self, principal: object) -> list[str]:
            return ["herts-converged"]

        def agreement(self, agreement_id: str) -> Any:
            return SimpleNamespace(current=SimpleNamespace(timezone="Europe/London"))

    class Reports:
        def period_report(self, principal: object, agreement_id: str, period: str, *_: Any) -> Any:
            if period != "2026-10":
                raise OutOfRange(f"{period} is not covered in this test")
            return period_report_from_dict(report)

    class Pool:
        def get_stats(self) -> dict[str, int]:
            return {"pool_size": 3, "pool_available": 1, "requests_waiting": 0, "pool_max": 15}

    store = SimpleNamespace(
        max_position=lambda: 9,
        recorder=SimpleNamespace(datastore=SimpleNamespace(pool=Pool())),
    )
    m = fresh()
    observer = observability.observer(m)
    observers = SimpleNamespace(observers=[observer])
    observability.instrument(SimpleNamespace(service=Service(), store=store, observers=observers), m,
                             reports=Reports())
    assert value(m, "ledger_log_size_events") == 9
    assert value(m, "ledger_db_pool_connections_in_use") == 2

    sent = [event(type="opened", event_id="a"), event(type="responded", event_id="dup")]
    observer.stored([event(type="opened", event_id="a", position=10)])
    results: list[Any] = [SimpleNamespace(duplicate=False), SimpleNamespace(duplicate=True)]
    observer.appended(sent, results,
                      0.01)
    observer.rejected([event(type="clock_resumed", event_id="b")],
                      TimelineViolation("not_paused", "clock_resumed while not paused", index=0),
                      0.01)
    observer.rejected([event(type="bad", event_id="c"), event(type="opened", event_id="d")],
                      InvalidArgument("events[1].actor", "is required"), 0.01)

    assert value(m, "ledger_events_appended_total", type="opened") == 1
    assert value(m, "ledger_log_size_events") == 10
    assert value(m, "ledger_events_duplicate_total", type="responded") == 1
    assert value(m, "ledger_events_rejected_total", type="clock_resumed", reason="not_paused") == 1
    assert value(m, "ledger_events_rejected_total", type="opened", reason="invalid_argument") == 1
    assert value(m, "ledger_append_duration_seconds_count") == 3

    october = {"agreement": "herts-converged", "service_level": "p1-resolution"}
    labels = {**october, "kind": "resolution", "period": "previous"}
    assert value(m, "ledger_sla_attainment_ratio", **labels) == 0.6
    assert value(m, "ledger_sla_collector_up") == 1
    assert value(m, "ledger_sla_objective_ratio", **{**labels, "period": "current"}) is None


@pytest.mark.parametrize(("period", "previous"), [("2026-11", "2026-10"), ("2027-01", "2026-12")])
def test_previous_period(period: str, previous: str) -> None:
    from ledger.server.observability import current_period, previous_period

    assert previous_period(period) == previous
    # 2026-10-31T23:30Z is still October in London (GMT), already November in Berlin
    instant = 1793489400 * 1_000_000
    assert current_period("Europe/London", instant) == "2026-10"
    assert current_period("Europe/Berlin", instant) == "2026-11"
