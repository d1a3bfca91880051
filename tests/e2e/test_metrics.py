"""Metrics: names and labels on a fresh registry, the scrape-time SLA collector,
the metrics listener, and the gRPC interceptor on a tiny in-test aio server."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from prometheus_client import CollectorRegistry, generate_latest

from ledger.domain.sla.report_json import period_report_from_dict
from ledger.observability.db_pool import DbPoolStats, psycopg_pool_stats
from ledger.observability.grpc_interceptor import ObservabilityInterceptor
from ledger.observability.grpc_methods import GRPC_CODE_NAMES, ledger_grpc_methods
from ledger.observability.listener import parse_address, start_metrics_server
from ledger.observability.metrics import LedgerMetrics
from ledger.observability.sla_snapshot import (
    AgreementSnapshot,
    ServiceLevelSnapshot,
    snapshot_from_report,
)

EXPECTED = Path(__file__).resolve().parents[1] / "data" / "herts-2026-10.expected.json"


def fresh() -> LedgerMetrics:
    return LedgerMetrics(CollectorRegistry(), process_metrics=False)


def value(m: LedgerMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


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


# --------------------------------------------------------------------------- SLA collector


def _expected_report() -> dict[str, Any]:
    if not EXPECTED.exists():
        pytest.skip(f"worked scenario not found at {EXPECTED}")
    report: dict[str, Any] = json.loads(EXPECTED.read_text())["reports"][0]
    return report


def test_sla_collector_from_worked_scenario_report() -> None:
    report = _expected_report()
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


# --------------------------------------------------------------------------- listener


def test_metrics_listener_serves_the_registry() -> None:
    m = fresh()
    m.record_stored(["opened"], log_size=7)
    server = start_metrics_server("127.0.0.1:0", m.registry)
    try:
        assert server.host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert "ledger_log_size_events 7.0" in body
        assert 'ledger_events_appended_total{type="opened"} 1.0' in body
    finally:
        server.close()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9464", ":9464", "host:", "host:http", "h:70000"])
def test_parse_address_refuses(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_address(address)


# --------------------------------------------------------------------------- interceptor


async def _ok(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"ok"


async def _invalid(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "events[0].occurred_at: required")
    raise AssertionError("unreachable")


async def _not_found(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    return b""


async def _boom(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("bug")


async def _stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield b"event"


Rpc = Callable[..., Awaitable[Any]]


async def _with_server(
    m: LedgerMetrics, body: Callable[[grpc.aio.Channel], Awaitable[None]]
) -> None:
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor(m)])
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Svc",
                {
                    "Ok": grpc.unary_unary_rpc_method_handler(_ok),
                    "Invalid": grpc.unary_unary_rpc_method_handler(_invalid),
                    "NotFound": grpc.unary_unary_rpc_method_handler(_not_found),
                    "Boom": grpc.unary_unary_rpc_method_handler(_boom),
                    "Stream": grpc.unary_stream_rpc_method_handler(_stream),
                },
            )
        ]
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await body(channel)
    finally:
        await server.stop(None)


async def _code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_interceptor_records_codes_messages_and_latency() -> None:
    m = fresh()

    async def body(channel: grpc.aio.Channel) -> None:
        assert await _code_of(channel.unary_unary("/test.Svc/Ok")(b"")) == grpc.StatusCode.OK
        assert await _code_of(channel.unary_unary("/test.Svc/Ok")(b"")) == grpc.StatusCode.OK
        invalid = await _code_of(channel.unary_unary("/test.Svc/Invalid")(b""))
        assert invalid == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            await _code_of(channel.unary_unary("/test.Svc/NotFound")(b""))
            == grpc.StatusCode.NOT_FOUND
        )
        assert await _code_of(channel.unary_unary("/test.Svc/Boom")(b"")) == grpc.StatusCode.UNKNOWN
        nope = await _code_of(channel.unary_unary("/test.Svc/Nope")(b""))
        assert nope == grpc.StatusCode.UNIMPLEMENTED
        messages = [msg async for msg in channel.unary_stream("/test.Svc/Stream")(b"")]
        assert messages == [b"event"] * 3
        check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert (await check).status == health_pb2.HealthCheckResponse.SERVING

    asyncio.run(_with_server(m, body))

    unary = {"grpc_type": "unary", "grpc_service": "test.Svc"}
    assert value(m, "grpc_server_started_total", grpc_method="Ok", **unary) == 2
    assert value(m, "grpc_server_handled_total", grpc_method="Ok", grpc_code="OK", **unary) == 2
    assert value(m, "grpc_server_msg_received_total", grpc_method="Ok", **unary) == 2
    assert value(m, "grpc_server_msg_sent_total", grpc_method="Ok", **unary) == 2
    assert value(m, "grpc_server_handling_seconds_count", grpc_method="Ok", **unary) == 2
    handled = "grpc_server_handled_total"
    assert value(m, handled, grpc_method="Invalid", grpc_code="InvalidArgument", **unary) == 1
    assert value(m, handled, grpc_method="NotFound", grpc_code="NotFound", **unary) == 1
    assert value(m, handled, grpc_method="Boom", grpc_code="Unknown", **unary) == 1
    assert value(m, "grpc_server_msg_sent_total", grpc_method="Invalid", **unary) is None
    # an unregistered method never becomes a label value
    unknown = {"grpc_type": "unary", "grpc_service": "unknown", "grpc_method": "unknown"}
    assert value(m, handled, grpc_code="Unimplemented", **unknown) == 1
    assert 'grpc_method="Nope"' not in generate_latest(m.registry).decode()

    stream = {"grpc_type": "server_stream", "grpc_service": "test.Svc", "grpc_method": "Stream"}
    assert value(m, "grpc_server_started_total", **stream) == 1
    assert value(m, handled, grpc_code="OK", **stream) == 1
    assert value(m, "grpc_server_msg_sent_total", **stream) == 3
    assert value(m, "grpc_server_msg_received_total", **stream) == 1

    health = {"grpc_type": "unary", "grpc_service": "grpc.health.v1.Health", "grpc_method": "Check"}
    assert value(m, handled, grpc_code="OK", **health) == 1


def test_interceptor_counts_a_cancelled_stream() -> None:
    m = fresh()

    async def endless(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        while True:
            yield b"tick"
            await asyncio.sleep(0.01)

    async def run() -> None:
        server = grpc.aio.server(interceptors=[ObservabilityInterceptor(m)])
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "test.Svc", {"Follow": grpc.unary_stream_rpc_method_handler(endless)}
                )
            ]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_stream("/test.Svc/Follow")(b"")
                received = 0
                async for _ in call:
                    received += 1
                    if received == 5:
                        call.cancel()
                        break
            for _ in range(200):  # the server notices the cancellation asynchronously
                if value(m, "grpc_server_handled_total", grpc_code="Canceled", **labels):
                    break
                await asyncio.sleep(0.01)
        finally:
            await server.stop(None)

    labels = {"grpc_type": "server_stream", "grpc_service": "test.Svc", "grpc_method": "Follow"}
    asyncio.run(run())
    assert value(m, "grpc_server_handled_total", grpc_code="Canceled", **labels) == 1
    sent = value(m, "grpc_server_msg_sent_total", **labels)
    assert sent is not None and sent >= 5


# --------------------------------------------------------------------------- wiring


def test_observer_and_instrument_feed_appends_pool_and_sla_figures() -> None:
    from types import SimpleNamespace

    from ledger.domain.errors import InvalidArgument, OutOfRange, TimelineViolation
    from ledger.domain.instants import parse_instant
    from ledger.server import observability

    report = _expected_report()
    event = SimpleNamespace  # what the observer reads of an event: type, event_id, position

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
    observer.appended(sent, [SimpleNamespace(duplicate=False), SimpleNamespace(duplicate=True)],
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
