"""`sla-ledger statement`: one self-contained HTML file whose every figure
equals the JSON answers of the API for the same question (SQLite and
PostgreSQL, over a real gRPC server)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ledger.adapters.scenario import read_scenario
from ledger.audit.checkpoint import Verifier, verify_checkpoint
from ledger.cli.common import demo_scenario_path
from ledger.cli.load import load_scenario
from ledger.cli.main import main
from ledger.domain.instants import parse_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from tests.support.ledger_server import running_ledger
from tests.support.statement_figures import check_figures, figures_in_html

pytestmark = pytest.mark.e2e
T = parse_instant("2026-11-05T00:00:00Z")
AGREEMENT = "herts-converged"


def statement_file(target: str, out: Path, period: str = "2026-10", *extra: str) -> str:
    code = main(["statement", "--agreement", AGREEMENT, "--period", period,
                 "--evaluated-at", "2026-11-05T00:00:00Z", "--target", target, "--out", str(out),
                 *extra])
    assert code == 0
    return out.read_text("utf-8")


def test_every_figure_equals_the_json_report(database_url: str, tmp_path: Path) -> None:
    from ledger.client import LedgerClient

    with running_ledger(database_url, lambda: T) as (_, target), LedgerClient(target) as client:
        load_scenario(client, read_scenario(demo_scenario_path()))
        html = statement_file(target, tmp_path / "statement.html")
        statement = client.statement(AGREEMENT, "2026-10", evaluated_at=T)
        position = statement["report"]["recorded_position"]
        report = period_report_dict(client.period_report(AGREEMENT, "2026-10", evaluated_at=T,
                                      as_recorded_position=position))
        assert period_report_dict(client.period_report(AGREEMENT, "2026-10", evaluated_at=T)) == \
            {**report, "as_recorded_at": None}
        assert statement["report"] == {**report, "as_recorded_at": None}

        views: dict[str, dict[str, Any]] = {}

        def incident_sla(incident_id: str) -> dict[str, Any]:
            if incident_id not in views:
                views[incident_id] = incident_view_dict(client.incident_sla(incident_id, evaluated_at=T,
                                                         as_recorded_position=position))
            return views[incident_id]

        figures = figures_in_html(html)
        assert check_figures(figures, report, statement, incident_sla) > 50
    paths = {p for p, _, _ in figures}
    for level in report["service_levels"]:
        for field in ("objective", "attainment", "achieved", "credit.minor_units",
                      "credit_uncapped.minor_units"):
            assert f"service_levels.{level['id']}.{field}" in paths
        for org in report["credits_by_provider"]:
            assert f"service_levels.{level['id']}.credit_split.{org}" in paths
    for total in ("credits_total.minor_units", "credits_uncapped.minor_units", "credit_cap.minor_units",
                  *(f"credits_by_provider.{org}" for org in report["credits_by_provider"])):
        assert total in paths
    # every missed clock of the report is listed, with its elapsed time
    missed = {(i, lv["id"]) for lv in report["service_levels"]
              for i in (lv.get("incidents") or {}).get("missed", [])}
    assert missed and missed == {tuple(p.split(".")[1:3]) for p in paths
                                 if p.startswith("missed.") and p.endswith(".elapsed_seconds")}
    assert "checkpoint.root_hash" in paths and "footer.position" in paths


def test_the_file_is_self_contained_and_prints(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    from ledger.client import LedgerClient

    with running_ledger(database, lambda: T) as (_, target), LedgerClient(target) as client:
        load_scenario(client, read_scenario(demo_scenario_path()))
        html = statement_file(target, tmp_path / "statement.html", "2026-10", "--as-recorded-at", "80")
        statement = client.statement(AGREEMENT, "2026-10", evaluated_at=T, as_recorded_position=80)
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", html, re.I)
    assert "default-src 'none'" in html and "@media print" in html
    assert html.count("<svg") >= 3  # custody bars, timeline, attainment chart
    assert statement["report"]["recorded_position"] == 80
    assert statement["report"]["as_recorded_at"] == 80
    # the footer: position, the covering checkpoint and how to reproduce it
    checkpoint = statement["checkpoint"]
    assert checkpoint["size"] >= 80
    verified = verify_checkpoint(checkpoint["note"], Verifier.from_vkey(checkpoint["public_key"]))
    assert verified.root_hash.hex() == checkpoint["root_hash"] and checkpoint["root_hash"] in html
    assert f"{Verifier.from_vkey(checkpoint['public_key']).key_id:08x}" == checkpoint["key_id"]
    assert any(c.startswith("sla-ledger replay") and "--as-recorded-at 80" in c
               for c in statement["commands"])
    for command in statement["commands"]:
        assert command in html


def test_six_periods_and_periods_without_figures(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    from ledger.client import LedgerClient

    with running_ledger(database, lambda: T) as (_, target), LedgerClient(target) as client:
        load_scenario(client, read_scenario(demo_scenario_path()))
        statement = client.statement(AGREEMENT, "2026-10", evaluated_at=T)
        history = statement["history"]
        assert [h["period"] for h in history] == ["2026-05", "2026-06", "2026-07", "2026-08",
                                                  "2026-09", "2026-10"]
        for entry in history:
            if entry["status"] == "before the agreement":
                assert entry["levels"] == []
                continue
            past = period_report_dict(client.period_report(AGREEMENT, entry["period"], evaluated_at=T,
                                        as_recorded_position=statement["report"]["recorded_position"]))
            assert entry["levels"] == [
                {"id": lv["id"], "objective": lv["objective"], "attainment": lv["attainment"],
                 "achieved": lv["achieved"]} for lv in past["service_levels"]]
        future = statement_file(target, tmp_path / "future.html", "2026-12")
    assert 'data-figure="status" data-value="not started"' in future
    assert "had not started" in future and ">NO<" not in future

