"""The worked scenario through the public gRPC API, on SQLite and PostgreSQL:
load it, then compare both reports and every incident view with the expected
output field by field."""

from __future__ import annotations

import json

import grpc
import pytest

from ledger.adapters.scenario import read_scenario
from ledger.cli.load import load_scenario
from ledger.client.convert import micros_to_timestamp
from ledger.domain.instants import parse_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from ledger.v1 import incidents_pb2, reports_pb2
from tests.support.ledger_server import ledger_client
from tests.support.scenarios import EXPECTED, SCENARIO, assert_same, without_position

T = parse_instant("2026-11-05T00:00:00Z")

pytestmark = pytest.mark.e2e


def fixed_clock() -> int:
    return T


def test_worked_scenario_end_to_end(database_url: str) -> None:
    expected = json.loads(EXPECTED.read_text())
    with ledger_client(database_url, fixed_clock) as (_, client):
        summary = load_scenario(client, read_scenario(SCENARIO))
        assert (summary.stored, summary.duplicates) == (112, 1)
        expected_rejections = {r["index"]: r["reason"] for r in expected["rejected"]
                               if not r["reason"].startswith("duplicate")}
        assert {r["index"]: r["reason"] for r in summary.rejected} == expected_rejections

        full = period_report_dict(client.period_report("herts-converged", "2026-10", evaluated_at=T))
        assert full["recorded_position"] == summary.position_after(114)
        assert_same(full, without_position(expected["reports"][0]))
        # Clients written before the structured report read the deprecated
        # report_json: still filled, with the same report in the same bytes.
        response = client.reports.GetPeriodReport(reports_pb2.GetPeriodReportRequest(
            agreement_id="herts-converged", period="2026-10",
            evaluated_at=micros_to_timestamp(T)), metadata=client.metadata)
        assert response.report_json == json.dumps(full, ensure_ascii=False, separators=(",", ":"))

        cut = summary.position_after(82)
        known_82 = period_report_dict(client.period_report("herts-converged", "2026-10", evaluated_at=T,
                                        as_recorded_position=cut))
        assert known_82["recorded_position"] == cut
        assert known_82["as_recorded_at"] == cut
        assert_same(known_82, without_position(expected["reports"][1]))
        # Knowledge time: the same question gives the same bytes.
        again = period_report_dict(client.period_report("herts-converged", "2026-10", evaluated_at=T,
                                     as_recorded_position=cut))
        assert again == known_82

        for incident_id, view in expected["incidents"].items():
            actual = incident_view_dict(client.incident_sla(incident_id, evaluated_at=T))
            assert_same(actual, without_position(view), f"{incident_id}.")

        # Every incident, listed page by page (from the SLA read model).
        listed: list[str] = []
        token = ""
        while True:
            page = client.incidents.ListIncidents(incidents_pb2.ListIncidentsRequest(
                agreement_id="herts-converged", page_size=5, page_token=token))
            listed += [i.incident_id for i in page.incidents]
            token = page.next_page_token
            if not token:
                break
        assert listed == sorted(expected["incidents"])

        # Loading the same file twice stores nothing new.
        second = load_scenario(client, read_scenario(SCENARIO))
        assert (second.stored, second.duplicates, len(second.rejected)) == (0, 113, 2)


def test_bad_report_requests_answer_precisely(database_url: str) -> None:
    with ledger_client(database_url, fixed_clock) as (_, client):
        load_scenario(client, read_scenario(SCENARIO))
        cases = [
            ({"agreement_id": "nope", "period": "2026-10"}, grpc.StatusCode.NOT_FOUND),
            ({"agreement_id": "herts-converged", "period": "2026-13"}, grpc.StatusCode.INVALID_ARGUMENT),
            ({"agreement_id": "herts-converged", "period": "2026-10", "as_recorded_position": 10_000},
             grpc.StatusCode.OUT_OF_RANGE),
        ]
        for kwargs, code in cases:
            with pytest.raises(grpc.RpcError) as info:
                period_report_dict(client.period_report(evaluated_at=T, **kwargs))  # type: ignore[arg-type]
            assert info.value.code() == code, kwargs
        with pytest.raises(grpc.RpcError) as info:
            incident_view_dict(client.incident_sla("INC-404", evaluated_at=T))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_restatement_between_two_cuts(database_url: str) -> None:
    """What the last events changed, computed by the server (GetRestatement)."""
    expected = json.loads(EXPECTED.read_text())
    with ledger_client(database_url, fixed_clock) as (_, client):
        summary = load_scenario(client, read_scenario(SCENARIO))
        cut, last = summary.position_after(82), summary.position_after(114)
        result = client.restatement("herts-converged", "2026-10", evaluated_at=T,
                                    from_cut={"as_recorded_position": cut})
        assert (result["from_position"], result["to_position"]) == (cut, last)
        assert [e["position"] for e in result["events"]] == list(range(cut + 1, last + 1))
        before, after = expected["reports"][1], expected["reports"][0]
        moved = {c["field"]: c for c in result["changes"] if "before" in c}
        assert "service_levels.p1-response.met" in moved
        for level_before, level_after in zip(before["service_levels"], after["service_levels"],
                                             strict=True):
            for field in ("met", "missed", "pending", "excused"):
                if field in level_after and level_before[field] != level_after[field]:
                    change = moved[f"service_levels.{level_after['id']}.{field}"]
                    assert (change["before"], change["after"]) == \
                        (level_before[field], level_after[field])
                    assert change["delta"] == str(level_after[field] - level_before[field])

        bad = [({"from_cut": {}}, grpc.StatusCode.INVALID_ARGUMENT),
               ({"from_cut": {"as_recorded_position": last + 1}}, grpc.StatusCode.OUT_OF_RANGE),
               ({"from_cut": {"as_recorded_position": last},
                 "to_cut": {"as_recorded_position": cut}}, grpc.StatusCode.INVALID_ARGUMENT)]
        for kwargs, code in bad:
            with pytest.raises(grpc.RpcError) as info:
                client.restatement("herts-converged", "2026-10", evaluated_at=T,
                                   **kwargs)  # type: ignore[arg-type]
            assert info.value.code() == code, kwargs
