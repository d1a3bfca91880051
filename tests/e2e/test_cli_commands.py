"""The `sla-ledger` commands people and scripts use, over a real server:
listings in the scenario file's naming, `load` (exit codes, unknown keys,
dry runs, the JSON Lines `events` writes), reports as CSV and tables,
`principal add` and `--version`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.adapters.principals_file import hash_token, load_principals
from ledger.cli.common import EXIT_REJECTED, EXIT_USAGE, demo_scenario_path
from ledger.cli.load import progress_line
from ledger.cli.main import main
from ledger.cli.reports import report_table
from ledger.client import LedgerClient
from ledger.domain.instants import parse_instant
from ledger.domain.sla.report_json import period_report_dict, period_report_from_dict
from tests.support.ledger_server import running_ledger

pytestmark = pytest.mark.e2e
T = parse_instant("2026-11-05T00:00:00Z")
AGREEMENT = "herts-converged"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def scenario_with(tmp_path: Path, change: Any) -> Path:
    data = json.loads(Path(demo_scenario_path()).read_text())
    change(data)
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def test_load_exit_codes_and_the_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_ledger(f"sqlite:///{tmp_path / 'a.db'}", lambda: T) as (ledger, target):
        # only the agreement first, so the dry run can check every event
        only_agreement = scenario_with(tmp_path, lambda d: d.update(events=[]))
        assert run(capsys, "load", str(only_agreement), "--target", target)[0] == 0
        before = ledger.store.max_position()
        code, out, _ = run(capsys, "load", demo_scenario_path(), "--target", target, "--dry-run", "--json")
        dry = json.loads(out)
        assert code == EXIT_REJECTED and dry["dry_run"] and dry["unchecked"] == 0
        assert ledger.store.max_position() == before  # nothing stored
        code, out, _ = run(capsys, "load", demo_scenario_path(), "--target", target, "--json")
        real = json.loads(out)
        assert code == EXIT_REJECTED  # the worked scenario holds events the ledger refuses
        assert real["stored"] == dry["stored"] and real["duplicates"] == dry["duplicates"]
        assert [r["index"] for r in real["rejected"]] == [r["index"] for r in dry["rejected"]]
        assert ledger.store.max_position() == before + real["stored"]
        # a file whose every event is already stored, or a clean file, exits 0
        code, out, _ = run(capsys, "load", str(only_agreement), "--target", target)
        assert code == 0 and "stored 0" in out


def test_unknown_keys_and_fields_are_refused_with_their_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    misspelt_key = scenario_with(tmp_path, lambda d: d.update(evnts=[]))
    code, _, err = run(capsys, "load", str(misspelt_key), "--target", "127.0.0.1:1")
    line = next(n for n, text in enumerate(misspelt_key.read_text().splitlines(), 1) if '"evnts"' in text)
    assert code == EXIT_USAGE and "'evnts'" in err and f":{line}" in err

    def misspell(data: dict[str, Any]) -> None:
        data["events"][3]["priorty"] = data["events"][3].pop("priority", "P2")

    with running_ledger(f"sqlite:///{tmp_path / 'b.db'}", lambda: T) as (_, target):
        path = scenario_with(tmp_path, misspell)
        code, out, _ = run(capsys, "load", str(path), "--target", target, "--json")
    rejected = {r["index"]: r for r in json.loads(out)["rejected"]}
    assert code == EXIT_REJECTED and "priorty" in rejected[3]["reason"]
    event_id = json.loads(path.read_text())["events"][3]["event_id"]
    assert rejected[3]["line"] == next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                                       if event_id in text)


def test_load_accepts_what_events_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_ledger(f"sqlite:///{tmp_path / 'a.db'}", lambda: T) as (_, target):
        run(capsys, "load", demo_scenario_path(), "--target", target)
        code, lines, _ = run(capsys, "events", "--target", target)
        with LedgerClient(target) as client:
            original = period_report_dict(client.period_report(AGREEMENT, "2026-10", evaluated_at=T))
    assert code == 0
    dump = tmp_path / "log.jsonl"
    dump.write_text(lines)
    with running_ledger(f"sqlite:///{tmp_path / 'b.db'}", lambda: T) as (_, target):
        code, out, _ = run(capsys, "load", str(dump), "--target", target, "--json")
        summary = json.loads(out)
        assert code == 0 and summary["rejected"] == []
        assert summary["stored"] == len(lines.splitlines())
        with LedgerClient(target) as client:
            assert period_report_dict(client.period_report(AGREEMENT, "2026-10", evaluated_at=T)) == original


def test_listings_use_one_naming(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_ledger(f"sqlite:///{tmp_path / 'a.db'}", lambda: T) as (_, target):
        run(capsys, "load", demo_scenario_path(), "--target", target)
        code, out, _ = run(capsys, "agreements", "--target", target, "--format", "json")
        (agreement,) = json.loads(out)
        assert code == 0 and agreement["id"] == AGREEMENT and isinstance(agreement["position"], int)
        assert {lv.get("priority") for lv in agreement["service_levels"]} >= {"P1", "P2", "P3"}
        assert run(capsys, "agreement", AGREEMENT, "--target", target)[1].strip() == \
            json.dumps(agreement, indent=2)
        code, out, _ = run(capsys, "agreements", "--target", target)
        assert code == 0 and AGREEMENT in out
        code, out, _ = run(capsys, "incidents", "--agreement", AGREEMENT, "--status", "closed",
                           "--format", "json", "--target", target)
        incidents = json.loads(out)
        assert code == 0 and incidents and {i["status"] for i in incidents} == {"closed"}
        assert {i["priority"] for i in incidents} <= {"P1", "P2", "P3", "P4"}
        assert all(isinstance(i["last_position"], int) for i in incidents)
        code, out, _ = run(capsys, "incident", "INC-1003", "--format", "timeline", "--target", target)
        timeline = json.loads(out)
        assert timeline["incident"]["priority"] == "P1"
        assert all(isinstance(e["position"], int) for e in timeline["timeline"])
        code, out, _ = run(capsys, "incidents", "--agreement", AGREEMENT, "--at-risk",
                           "--evaluated-at", "2026-10-14T09:10:00Z", "--format", "json", "--target", target)
        clocks = json.loads(out)
        assert code == 0 and clocks == sorted(clocks, key=lambda c: c["due_at"])
        assert "PRIORITY_" not in out


def test_report_csv_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_ledger(f"sqlite:///{tmp_path / 'a.db'}", lambda: T) as (_, target):
        run(capsys, "load", demo_scenario_path(), "--target", target)
        question = ("--agreement", AGREEMENT, "--period", "2026-10", "--evaluated-at",
                    "2026-11-05T00:00:00Z", "--target", target)
        report = json.loads(run(capsys, "report", *question, "--format", "json")[1])
        code, out, _ = run(capsys, "report", *question, "--format", "csv")
        code_future, future, _ = run(capsys, "report", "--agreement", AGREEMENT, "--period", "2026-12",
                                     "--evaluated-at", "2026-11-05T00:00:00Z", "--target", target)
        code_before, _, before = run(capsys, "report", "--agreement", AGREEMENT, "--period", "2025-01",
                                     "--target", target)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["currency"] for r in rows} == {report["credits_total"]["currency"]}
    totals = {r["record"]: r for r in rows if r["record"] in ("credits_before_cap", "cap", "credits_due")}
    assert int(totals["cap"]["credit_minor_units"]) == report["credit_cap"]["minor_units"]
    assert int(totals["credits_due"]["credit_minor_units"]) == report["credits_total"]["minor_units"]
    assert int(totals["credits_before_cap"]["credit_minor_units"]) == report["credits_uncapped"]["minor_units"]
    owed = {r["provider"]: int(r["credit_minor_units"]) for r in rows if r["record"] == "provider_total"}
    assert owed == report["credits_by_provider"]
    for level in report["service_levels"]:
        split = {r["provider"]: int(r["credit_minor_units"]) for r in rows
                 if r["record"] == "level_provider" and r["service_level"] == level["id"]}
        assert {p: v for p, v in split.items() if v} == {p: v for p, v in level["credit_split"].items() if v}
    for width in (60, 80, 100, 160):
        table = report_table(period_report_from_dict(report), width)
        assert max(len(line) for line in table.splitlines()) <= max(width, 80)
        for level in report["service_levels"]:
            for incident in (level.get("incidents") or {}).get("missed", []):
                assert incident in table
    assert "breached: " in table
    assert code_future == 0 and "not started" in future and " NO " not in future and " yes " not in future
    assert code_before != 0 and "OUT_OF_RANGE" in before


def test_progress_shows_rate_and_time_left() -> None:
    assert progress_line(250, 1000, 5.0).endswith("250/1000 events 50/s ETA 00:15")
    assert progress_line(1000, 1000, 20.0).endswith("1000/1000 events 50/s in 00:20")
    assert "ETA --:--" in progress_line(0, 1000, 0.0)


def test_principal_add_prints_the_token_once_and_stores_its_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "principals.yaml"
    code, token, _ = run(capsys, "principal", "add", "bt-noc", "--org", "bt", "--role", "provider",
                         "--principals", str(path))
    token = token.strip()
    assert code == 0 and token and token not in path.read_text()
    assert hash_token(token) in path.read_text()
    code, second, _ = run(capsys, "principal", "add", "audit", "--org", "nao", "--role", "auditor",
                          "--principals", str(path))
    directory = load_principals(path)
    assert directory.by_token(token).name == "bt-noc"  # type: ignore[union-attr]
    assert directory.by_token(second.strip()).role == "auditor"  # type: ignore[union-attr]
    code, _, err = run(capsys, "principal", "add", "bt-noc", "--org", "bt", "--role", "provider",
                       "--principals", str(path))
    assert code == EXIT_USAGE and "bt-noc" in err and len(load_principals(path)) == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("sla-ledger ")


def test_amend_names_only_the_terms_that_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"at_risk_percent": "10"}))
    with running_ledger(f"sqlite:///{tmp_path / 'a.db'}", lambda: T) as (_, target):
        run(capsys, "load", demo_scenario_path(), "--target", target)
        code, out, _ = run(capsys, "amend", "--agreement", AGREEMENT, "--effective-from",
                           "2026-11-01T00:00:00Z", "--terms", str(changes), "--event-id", "amend-1",
                           "--target", target)
        assert code == 0 and json.loads(out)["duplicate"] is False
        again = run(capsys, "amend", "--agreement", AGREEMENT, "--effective-from",
                    "2026-11-01T00:00:00Z", "--terms", str(changes), "--event-id", "amend-1",
                    "--target", target)
        assert json.loads(again[1])["duplicate"] is True
        agreement = json.loads(run(capsys, "agreement", AGREEMENT, "--target", target)[1])
    (amendment,) = agreement["amendments"]
    assert amendment["at_risk_percent"] == "10" and amendment["event_id"] == "amend-1"
    assert amendment["service_levels"] == agreement["service_levels"]  # the rest carried over
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"at_risk_percentage": "10"}))
    assert run(capsys, "amend", "--agreement", AGREEMENT, "--effective-from", "2026-11-01T00:00:00Z",
               "--terms", str(bad), "--target", "127.0.0.1:1")[0] == EXIT_USAGE
