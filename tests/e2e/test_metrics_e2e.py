"""The real ledger with observability wired as ``sla-ledger serve`` does: load
the worked scenario, read the metrics listener, then let a real Prometheus
scrape it with the project's scrape config and rules and query its HTTP API."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ledger.adapters.scenario import read_scenario
from ledger.cli.load import load_scenario
from ledger.client import LedgerClient
from ledger.domain.instants import parse_instant
from ledger.grpc.server import ServerConfig
from ledger.server import observability
from ledger.server.bootstrap import start_ledger
from tests.support.processes import free_port
from tests.support.scenarios import EXPECTED, REPO, SCENARIO

OPS_PROMETHEUS = REPO / "ops" / "prometheus"
NOW = parse_instant("2026-11-05T00:00:00Z")  # the worked scenario's evaluation instant
REQUIRE_PROMETHEUS = os.environ.get("SLA_LEDGER_REQUIRE_PROMETHEUS") == "1"

pytestmark = pytest.mark.e2e


@dataclass
class Loaded:
    metrics_port: int
    summary: Any


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """A ledger serving the loaded worked scenario, observability wired in."""
    database = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    interceptors, stop_metrics = observability.start("127.0.0.1:0")
    port = observability.active_metrics_port()
    assert port
    ledger = asyncio.run_coroutine_threadsafe(
        start_ledger(
            database,
            ServerConfig(listen="127.0.0.1:0"),
            clock=lambda: NOW,
            interceptors=interceptors,
            observers=[observability.observer()],
        ),
        loop,
    ).result(30)
    try:
        observability.instrument(ledger)
        with LedgerClient(f"127.0.0.1:{ledger.port}", timeout=30) as client:
            summary = load_scenario(client, read_scenario(SCENARIO))
        assert ledger.runner is not None
        assert ledger.runner.wait_for(summary.stored, 30)  # every projection holds the log
        yield Loaded(port, summary)
    finally:
        asyncio.run_coroutine_threadsafe(ledger.stop(1.0), loop).result(30)
        stop_metrics()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_metrics_listener_after_the_worked_scenario(loaded: Loaded) -> None:
    samples = scrape(loaded.metrics_port)
    stored = loaded.summary.stored
    assert stored == 112  # 111 file events + the agreement's registration

    # write side
    assert total(samples, "ledger_events_appended_total") == stored
    assert total(samples, "ledger_log_size_events") == stored
    assert total(samples, "ledger_events_duplicate_total") == loaded.summary.duplicates == 1
    assert total(samples, "ledger_events_rejected_total", type="clock_resumed") == 1
    assert total(samples, "ledger_events_rejected_total", type="handed_off") == 1
    reasons = {
        dict(labels)["reason"]
        for (name, labels), value in samples.items()
        if name == "ledger_events_rejected_total" and value
    }
    assert reasons == {"not_paused", "not_custody_holder"}
    assert total(samples, "ledger_append_duration_seconds_count") >= 1
    assert total(samples, "ledger_append_batch_size_count") >= 1

    # projections (the fixture waited until they held the whole log)
    for projection in ("sla", "audit_merkle"):
        assert total(samples, "ledger_projection_position", projection=projection) == stored
        assert total(samples, "ledger_projection_lag_events", projection=projection) == 0
        assert total(samples, "ledger_projection_rebuild_progress_ratio", projection=projection) == 1

    # gRPC
    append = {"grpc_service": "ledger.v1.IncidentService", "grpc_method": "AppendEvents"}
    assert total(samples, "grpc_server_handled_total", grpc_code="OK", **append) >= 1
    assert (
        total(samples, "grpc_server_handled_total", grpc_code="FailedPrecondition", **append) == 2
    )
    assert total(samples, "grpc_server_started_total", **append) == total(
        samples, "grpc_server_handled_total", **append
    )
    assert total(samples, "grpc_server_handling_seconds_count", **append) >= 1
    # zero series exist for methods never called
    assert (
        "grpc_server_started_total",
        frozenset(
            {
                ("grpc_type", "server_stream"),
                ("grpc_service", "ledger.v1.LogService"),
                ("grpc_method", "ReadLog"),
            }
        ),
    ) in samples

    # SLA: October (the previous period at 2026-11-05) is the worked scenario's report
    expected = json.loads(EXPECTED.read_text())["reports"][0]
    october = {"agreement": "herts-converged", "period": "previous"}
    for level in expected["service_levels"]:
        sl = {**october, "service_level": level["id"], "kind": level["kind"]}
        assert total(samples, "ledger_sla_objective_ratio", **sl) == float(level["objective"])
        assert total(samples, "ledger_sla_achieved", **sl) == float(level["achieved"])
        if level["attainment"]:
            assert total(samples, "ledger_sla_attainment_ratio", **sl) == pytest.approx(
                float(level["attainment"])
            )
    for provider, minor in expected["credits_by_provider"].items():
        assert (
            total(samples, "ledger_sla_credits_accrued_minor_units", provider=provider, **october)
            == minor
        )
    network = {**october, "service_level": "network-availability"}
    assert total(samples, "ledger_sla_period_sli_bad", provider="bt", **network) == 14070
    assert total(samples, "ledger_sla_period_sli_bad", provider="hp", **network) == 7020
    # Claims (sla-semantics section 11): HP's lowering of INC-1016 awaits the
    # council, deemed accepted on 12 Nov 09:00Z; INC-1009's is disputed.
    claims = {"agreement": "herts-converged"}
    assert total(samples, "ledger_claims_open", org="herts", **claims) == 1
    assert total(samples, "ledger_claims_open", org="bt", **claims) == 0
    assert total(samples, "ledger_claims_next_deemed_timestamp_seconds", org="herts",
                 **claims) == parse_instant("2026-11-12T09:00:00Z") / 1e6
    # November has started: objectives are there, nothing counted yet
    november = {
        "agreement": "herts-converged",
        "period": "current",
        "service_level": "p1-resolution",
    }
    assert total(samples, "ledger_sla_objective_ratio", **november) == 0.95
    assert total(samples, "ledger_sla_collector_up") == 1


# --------------------------------------------------------------------------- real Prometheus


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _get(
        f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    )["data"]["result"]
    return result


@pytest.mark.prometheus
def test_real_prometheus_scrapes_the_ledger(loaded: Loaded, tmp_path: Path) -> None:  # noqa: PLR0915  one scenario against a real Prometheus, told in order
    binary = shutil.which("prometheus")
    if binary is None:
        if REQUIRE_PROMETHEUS:
            pytest.fail("prometheus not installed (apt-get install prometheus)")
        pytest.skip("prometheus not installed (apt-get install prometheus)")

    # The project's scrape config and rules, pointed at this ledger and scraping fast.
    config = yaml.safe_load((OPS_PROMETHEUS / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(OPS_PROMETHEUS / "rules" / "*.yml")]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "sla-ledger")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{loaded.metrics_port}"]}]
    config["scrape_configs"] = [job]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wanted = 'ledger_sla_attainment_ratio{service_level="p1-resolution",period="previous"}'
        deadline = time.monotonic() + 60
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline and process.poll() is None:
            try:
                result = _query(base, wanted)
            except OSError:
                result = []
            if result:
                break
            time.sleep(0.5)
        assert result, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert float(result[0]["value"][1]) == pytest.approx(0.6)
        assert result[0]["metric"]["job"] == "sla-ledger"

        [up] = _query(base, 'up{job="sla-ledger"}')
        assert up["value"][1] == "1"
        [size] = _query(base, "ledger_log_size_events")
        assert size["value"][1] == "112"
        credits = _query(
            base,
            'sum by (provider) (ledger_sla_credits_accrued_minor_units{period="previous"})',
        )
        expected = json.loads(EXPECTED.read_text())["reports"][0]["credits_by_provider"]
        assert {c["metric"]["provider"]: int(float(c["value"][1])) for c in credits} == expected

        # the rules are loaded and the recording rules evaluate on the ledger's series
        groups = _get(f"{base}/api/v1/rules")["data"]["groups"]
        alerts = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
        assert {
            "LedgerDown",
            "LedgerSlaErrorBudgetFastBurn",
            "LedgerCheckpointNotAdvancing",
        } <= alerts
        budget: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not budget:
            budget = _query(base, 'ledger:sla_error_budget:ratio{service_level="p1-resolution"}')
            time.sleep(0.5)
        assert budget and float(budget[0]["value"][1]) == pytest.approx(0.05)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
