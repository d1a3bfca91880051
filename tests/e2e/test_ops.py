"""ops/: promtool checks, the container health check against a real gRPC health
service, and the consistency of the compose file, image and systemd unit."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
REQUIRE_PROMETHEUS = os.environ.get("SLA_LEDGER_REQUIRE_PROMETHEUS") == "1"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not installed (apt-get install prometheus)"
        if REQUIRE_PROMETHEUS:
            pytest.fail(message)
        pytest.skip(message)
    return path


# --------------------------------------------------------------------------- promtool


def test_ops_check_passes() -> None:
    _promtool()
    result = subprocess.run(
        [str(OPS / "check")], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "dashboard(s) OK" in result.stdout


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    """The rule tests really assert something: a wrong expectation fails."""
    promtool = _promtool()
    original = (OPS / "prometheus" / "tests" / "ledger.test.yml").read_text()
    broken = original.replace("14.29% server errors", "1% server errors").replace(
        "../rules/", str(OPS / "prometheus" / "rules") + "/"
    )
    assert broken != original
    path = tmp_path / "broken.test.yml"
    path.write_text(broken)
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


# --------------------------------------------------------------------------- health check


@pytest.fixture
def health_server() -> Iterator[tuple[health.HealthServicer, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(None)


def _healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLA_LEDGER_")}
    return subprocess.run(
        [sys.executable, str(OPS / "docker" / "healthcheck.py")],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_healthcheck_serving(health_server: tuple[health.HealthServicer, int]) -> None:
    servicer, port = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    result = _healthcheck({"SLA_LEDGER_LISTEN": f"0.0.0.0:{port}"})
    assert result.returncode == 0, result.stderr
    assert "SERVING" in result.stdout


def test_healthcheck_draining(health_server: tuple[health.HealthServicer, int]) -> None:
    servicer, port = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    result = _healthcheck({"SLA_LEDGER_HEALTH_TARGET": f"127.0.0.1:{port}"})
    assert result.returncode == 1
    assert "NOT_SERVING" in result.stderr


def test_healthcheck_nothing_listening() -> None:
    result = _healthcheck(
        {"SLA_LEDGER_HEALTH_TARGET": "127.0.0.1:1", "SLA_LEDGER_HEALTH_TIMEOUT": "1"}
    )
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr


# --------------------------------------------------------------------------- compose, image, unit


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OPS / "compose.yaml").read_text())
    return data


def test_compose_services_ports_and_mounts() -> None:
    services = compose()["services"]
    assert set(services) == {"ledger", "postgres", "prometheus", "grafana"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    ledger = services["ledger"]
    assert ledger["build"]["dockerfile"] == "ops/Dockerfile"
    assert (OPS / ledger["build"]["context"] / ledger["build"]["dockerfile"]).is_file()
    assert ledger["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert ledger["read_only"] is True

    # Prometheus scrapes the ledger's metrics listener by its compose name and port.
    metrics_port = ledger["environment"]["SLA_LEDGER_METRICS_LISTEN"].rsplit(":", 1)[1]
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "sla-ledger")
    assert job["static_configs"][0]["targets"] == [f"ledger:{metrics_port}"]
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]

    # Grafana's dashboard provider reads where compose mounts the dashboards.
    provider = yaml.safe_load(
        (OPS / "grafana" / "provisioning" / "dashboards" / "sla-ledger.yml").read_text()
    )["providers"][0]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    datasource = yaml.safe_load(
        (OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"


def test_compose_secrets_stay_out_of_git() -> None:
    secrets = compose()["secrets"]
    for secret in secrets.values():
        assert secret["file"].startswith("./secrets/")
    ignore = (OPS / "secrets" / ".gitignore").read_text().split()
    assert ignore[0] == "*"
    assert "ops/secrets" in (OPS / "Dockerfile.dockerignore").read_text()
    assert (
        "postgresql://ledger@"
        in compose()["services"]["ledger"]["environment"]["SLA_LEDGER_DATABASE"]
    )  # no password in the URL


def test_dockerfile_non_root_with_grpc_health_check() -> None:
    text = (OPS / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*healthcheck\.py", text, re.MULTILINE)
    for source in re.findall(r"^COPY (ops/\S+)", text, re.MULTILINE):
        assert (ROOT / source).is_file(), source


def _unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (OPS / "systemd" / "sla-ledger.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_is_hardened() -> None:
    unit = _unit()
    assert unit["DynamicUser"] == ["yes"]
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictNamespaces": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert unit[key] == [value], key
    assert unit["StateDirectory"] == ["sla-ledger"]
    assert unit["ExecStart"][0].endswith("sla-ledger serve")
    env = dict(e.split("=", 1) for e in unit["Environment"])
    assert env["SLA_LEDGER_METRICS_LISTEN"].startswith("127.0.0.1:")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_unit_verifies() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(OPS / "systemd" / "sla-ledger.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    # The only complaint allowed on a build machine: the program is not installed here.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert problems == []


def _serve_flags() -> set[str]:
    from ledger.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    serve = sub.choices["serve"]
    return {
        opt[2:].replace("-", "_").upper()
        for action in serve._actions
        for opt in action.option_strings
        if opt.startswith("--")
    }


def test_ops_files_only_set_variables_sla_ledger_serve_reads() -> None:
    texts = [
        (OPS / "compose.yaml").read_text(),
        (OPS / "Dockerfile").read_text(),
        (OPS / "systemd" / "sla-ledger.service").read_text(),
    ]
    used = {name for text in texts for name in re.findall(r"SLA_LEDGER_([A-Z_]+)\s*[=:]", text)}
    unknown = {name for name in used - _serve_flags() if not name.startswith("HEALTH_")}
    assert unknown == set()
