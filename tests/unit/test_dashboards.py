"""Grafana dashboards and Prometheus rules: valid JSON models, a datasource and
an expression on every panel, and only metrics the ledger really exports."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ledger.observability.grafana import (
    PROMETHEUS_BUILTINS,
    check_files,
    dashboard_exprs,
    metric_names,
    recording_rule_names,
    rule_exprs,
    validate_dashboard,
)
from ledger.observability.metrics import LedgerMetrics

OPS = Path(__file__).resolve().parents[2] / "ops"
DASHBOARDS = sorted((OPS / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((OPS / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((OPS / "prometheus" / "tests").glob("*.test.yml"))

REQUIRED_ALERTS = {
    "LedgerDown",
    "LedgerGrpcErrorRateHigh",
    "LedgerProjectionLagging",
    "LedgerAppendLatencyHigh",
    "LedgerSlaAttainmentBelowObjective",
    "LedgerSlaErrorBudgetFastBurn",
    "LedgerSlaErrorBudgetSlowBurn",
    "LedgerCheckpointNotAdvancing",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


@pytest.fixture(scope="module")
def defined_metrics() -> set[str]:
    return LedgerMetrics().metric_names() | PROMETHEUS_BUILTINS | recording_rule_names(RULES)


def test_both_dashboards_exist() -> None:
    names = {p.name for p in DASHBOARDS}
    assert {"ledger-service.json", "sla-accountability.json"} <= names


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_model(path: Path) -> None:
    dashboard = load(path)
    assert isinstance(dashboard["uid"], str) and dashboard["uid"]
    assert isinstance(dashboard["title"], str) and dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["panels"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    assert validate_dashboard(dashboard) == []


def test_dashboard_uids_are_unique() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_use_only_exported_metrics(path: Path, defined_metrics: set[str]) -> None:
    used: set[str] = set()
    for expr in dashboard_exprs(load(path)):
        names = metric_names(expr)
        assert names, expr
        assert names <= defined_metrics, (expr, names - defined_metrics)
        used |= names
    assert any(n.startswith("ledger_") for n in used)


def test_rules_use_only_exported_metrics(defined_metrics: set[str]) -> None:
    exprs = list(rule_exprs(RULES))
    assert exprs
    for name, expr in exprs:
        assert metric_names(expr) <= defined_metrics, (name, metric_names(expr) - defined_metrics)


def test_the_sla_dashboard_covers_the_sla_families() -> None:
    used: set[str] = set()
    for expr in dashboard_exprs(load(OPS / "grafana" / "dashboards" / "sla-accountability.json")):
        used |= metric_names(expr)
    for name in (
        "ledger_sla_attainment_ratio",
        "ledger_sla_objective_ratio",
        "ledger_sla_incidents_at_risk",
        "ledger_sla_breaches",
        "ledger_sla_credits_accrued_minor_units",
        "ledger_sla_error_budget_remaining_ratio",
        "ledger_sla_period_sli_bad",
    ):
        assert name in used, name


def test_check_files_passes_on_the_repository() -> None:
    assert check_files(DASHBOARDS, RULES) == []


# --------------------------------------------------------------------------- rules and their tests


def _alert_rules() -> dict[str, dict[str, Any]]:
    alerts = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    return alerts


def test_required_alerts_exist_with_severity_and_summary() -> None:
    alerts = _alert_rules()
    assert set(alerts) >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set(_alert_rules())
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested quiet"


# --------------------------------------------------------------------------- the checker itself


@pytest.fixture
def good() -> dict[str, Any]:
    return load(DASHBOARDS[0])


def test_validator_catches_a_low_schema_version(good: dict[str, Any]) -> None:
    good["schemaVersion"] = 30
    assert any("schemaVersion" in e for e in validate_dashboard(good))


def test_validator_catches_overlapping_panels(good: dict[str, Any]) -> None:
    good["panels"][1]["gridPos"] = copy.deepcopy(good["panels"][0]["gridPos"])
    assert any("overlaps" in e for e in validate_dashboard(good))


def test_validator_catches_a_panel_past_the_grid(good: dict[str, Any]) -> None:
    good["panels"][0]["gridPos"]["x"] = 22
    assert any("24-column" in e for e in validate_dashboard(good))


def test_validator_catches_missing_datasource_and_expr(good: dict[str, Any]) -> None:
    del good["panels"][0]["datasource"]
    good["panels"][1]["targets"][0]["expr"] = " "
    errors = validate_dashboard(good)
    assert any("datasource" in e for e in errors)
    assert any("no expr" in e for e in errors)


def test_validator_catches_undefined_variables_and_duplicate_ids(good: dict[str, Any]) -> None:
    good["panels"][0]["targets"][0]["expr"] = 'up{job="$nope"}'
    good["panels"][1]["id"] = good["panels"][0]["id"]
    errors = validate_dashboard(good)
    assert any("$nope" in e for e in errors)
    assert any("unique integer" in e for e in errors)


def test_check_files_reports_unknown_metrics(tmp_path: Path, good: dict[str, Any]) -> None:
    good["panels"][0]["targets"][0]["expr"] = "rate(ledger_no_such_metric_total[5m])"
    path = tmp_path / "d.json"
    path.write_text(json.dumps(good))
    problems = check_files([path], RULES)
    assert any("ledger_no_such_metric_total" in p for p in problems)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (grpc_code) (rate(grpc_server_handled_total{job=~"$job",grpc_code!="OK"}'
            "[$__rate_interval]))",
            {"grpc_server_handled_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) "
            "(rate(ledger_append_duration_seconds_bucket[5m])))",
            {"ledger_append_duration_seconds_bucket"},
        ),
        (
            "ledger:sla_error_ratio:rate1h / on (job) group_left ledger:sla_error_budget:ratio",
            {"ledger:sla_error_ratio:rate1h", "ledger:sla_error_budget:ratio"},
        ),
        (
            "time() - max(ledger_checkpoint_timestamp_seconds) > 900 and up == 1",
            {
                "ledger_checkpoint_timestamp_seconds",
                "up",
            },
        ),
        ("count(ledger_sla_achieved == bool 0) or vector(0) * 1e3", {"ledger_sla_achieved"}),
        ('{__name__="ledger_log_size_events"} offset 5m', {"ledger_log_size_events"}),
    ],
)
def test_metric_names_of_expressions(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
