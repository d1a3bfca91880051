"""The fleet deployment (ops/fleet): Docker is not available here, so the
compose file is validated against the Compose Specification's JSON schema
(vendored from compose-spec/compose-spec, schema/compose-spec.json), and the
load balancer and Prometheus configurations are checked to agree with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

FLEET = Path(__file__).resolve().parents[3] / "ops" / "fleet"
REPLICAS = ["ledger-1", "ledger-2", "ledger-3"]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FLEET / name).read_text())
    return data


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((FLEET / "compose-spec.json").read_text())
    compose = load("compose.yaml")
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)
    services = compose["services"]
    assert {"postgres", "envoy", "prometheus", "grafana", *REPLICAS} <= set(services)
    for name in REPLICAS:
        replica = services[name]
        env = replica["environment"]
        # one key for every replica, one database; readiness is the health check
        assert env["SLA_LEDGER_CHECKPOINT_KEY"] == "/run/secrets/checkpoint_key.pem"
        assert env["SLA_LEDGER_DATABASE"].startswith("postgresql://ledger@postgres:5432/")
        assert "/readyz" in " ".join(replica["healthcheck"]["test"])
        assert "ports" not in replica  # only through the load balancer
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("../secrets/")


def test_envoy_balances_http2_over_healthy_replicas() -> None:
    envoy = load("envoy.yaml")
    (cluster,) = envoy["static_resources"]["clusters"]
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]
    assert cluster["health_checks"][0]["grpc_health_check"] == {"service_name": ""}
    endpoints = [e["endpoint"]["address"]["socket_address"]
                 for e in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]]
    assert [(e["address"], e["port_value"]) for e in endpoints] == [(r, 50051) for r in REPLICAS]
    (listener,) = envoy["static_resources"]["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["codec_type"] == "HTTP2"


def test_prometheus_scrapes_every_replica() -> None:
    prometheus = load("prometheus.yml")
    ledger = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "sla-ledger")
    assert ledger["static_configs"][0]["targets"] == [f"{r}:9464" for r in REPLICAS]
