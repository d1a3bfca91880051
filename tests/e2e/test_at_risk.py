"""Clocks at risk through the public API and the command line, on both
databases: every pending clock with a due instant of every incident view,
soonest first, with the custody holder and the figures the views state."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from ledger.adapters.scenario import read_scenario
from ledger.cli.common import demo_scenario_path
from ledger.cli.load import load_scenario
from ledger.cli.main import main
from ledger.client import LedgerClient
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.render import fmt_seconds
from ledger.domain.sla.report import ClockAtRisk
from tests.support.ledger_server import running_ledger

pytestmark = pytest.mark.e2e
# Live operations: the list is asked at the ledger's now (the read models
# keep the clocks still running at the latest knowledge), here mid-month
# with the worked scenario's events up to then.
T = NOW = parse_instant("2026-10-14T09:10:00Z")


def _from_views(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The at-risk list derived from the incident views alone."""
    out = []
    for view in views:
        for level_id, clock in (view.get("service_levels") or {}).items():
            if clock["outcome"] == "pending" and clock["due_at"]:
                out.append({"due_at": clock["due_at"], "incident_id": view["incident_id"],
                            "agreement": view["agreement"], "service_level": level_id,
                            "custody": (view.get("custody") or [{}])[-1].get("org", ""),
                            "elapsed_seconds": clock["elapsed_seconds"],
                            "threshold_seconds": clock["threshold_seconds"]})
    out.sort(key=lambda c: (parse_instant(c["due_at"]), c["incident_id"], c["service_level"]))
    return out


def _listed(clock: ClockAtRisk) -> dict[str, Any]:
    return {"due_at": format_instant(clock.due_at), "incident_id": clock.incident_id,
            "agreement": clock.agreement_id, "service_level": clock.service_level_id,
            "custody": clock.custody, "elapsed_seconds": fmt_seconds(clock.elapsed),
            "threshold_seconds": fmt_seconds(clock.threshold)}


def test_clocks_at_risk_are_the_pending_clocks_of_the_views(
        database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = read_scenario(demo_scenario_path())
    kept = [i for i, e in enumerate(scenario.events) if parse_instant(e["occurred_at"]) <= NOW]
    scenario = replace(scenario, events=[scenario.events[i] for i in kept],
                       event_lines=[scenario.event_lines[i] for i in kept])
    with running_ledger(database_url, lambda: NOW) as (_, target), \
            LedgerClient(target, timeout=30) as client:
        load_scenario(client, scenario)
        ids = sorted({e.incident_id for _, e in client.read_log() if e.incident_id})
        views = []
        for incident_id in ids:
            view = incident_view_dict(client.incident_sla(incident_id, evaluated_at=T))
            if view.get("exists"):
                views.append(view)
        expected = _from_views(views)
        clocks = client.at_risk(evaluated_at=T)
        assert expected, "the scenario has a running clock at its evaluation instant"
        assert [_listed(c) for c in clocks] == expected
        capsys.readouterr()
        code = main(["incidents", "--at-risk", "--evaluated-at", format_instant(T), "--format",
                     "json", "--target", target])
        out, _ = capsys.readouterr()
        assert code == 0 and json.loads(out) == expected
