"""Helpers for the metrics tests: a fresh registry (no process metrics, so
tests cannot see each other's series), one sample's value, and the worked
scenario's expected October report that the SLA figures are read from."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry

from ledger.observability.metrics import LedgerMetrics
from tests.support.scenarios import EXPECTED


def fresh() -> LedgerMetrics:
    return LedgerMetrics(CollectorRegistry(), process_metrics=False)


def value(m: LedgerMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def expected_report() -> dict[str, Any]:
    report: dict[str, Any] = json.loads(EXPECTED.read_text())["reports"][0]
    return report
