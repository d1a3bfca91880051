"""Readings 10.19-10.27 and 10.29 through the public API: one scenario file
loaded with `sla-ledger load` over gRPC, then reports and incident views, on
SQLite and PostgreSQL (latest-knowledge answers come from the read models,
so this also checks they follow the same domain functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from ledger.adapters.scenario import read_scenario
from ledger.application.reports import ReportService
from ledger.cli.load import LoadSummary, load_scenario
from ledger.client import LedgerClient
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.instants import parse_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from ledger.v1 import events_pb2, incidents_pb2
from tests.support.ledger_server import ledger_client

pytestmark = pytest.mark.e2e

T = parse_instant("2027-04-05T00:00:00Z")
SEPT = "2026-09-30T23:00:00Z"

AGR: dict[str, Any] = {
    "id": "agr", "customer": "cust", "providers": ["pa", "pb"], "timezone": "UTC",
    "effective_from": "2026-09-11T00:00:00Z",
    "monthly_charge": {"currency": "GBP", "minor_units": 1_000_000}, "at_risk_percent": "100",
    "policy": "custody", "maintenance_notice": "P1D", "services": ["net", "desk"],
    "calendars": {"night": {"timezone": "Europe/London", "weekly": [
        {"day": "SUN", "start": "00:30", "end": "01:30"},
        {"day": "SUN", "start": "01:30", "end": "02:00"}]}},
    "service_levels": [
        {"id": "p1-response", "kind": "response", "priority": "P1", "threshold": "PT15M",
         "calendar": "24x7", "objective": "0.9", "credit_percent": "10"},
        {"id": "desk-resolution", "kind": "resolution", "priority": "P1", "threshold": "PT1H",
         "service": "desk", "calendar": "24x7", "objective": "0.9", "credit_percent": "5"},
        {"id": "p3-night", "kind": "resolution", "priority": "P3", "threshold": "PT30M",
         "calendar": "night", "objective": "0.9", "credit_percent": "1"},
        {"id": "net-availability", "kind": "availability", "service": "net",
         "calendar": "24x7", "objective": "0.99", "credit_percent": "20"},
    ],
}
ZONED: dict[str, Any] = AGR | {
    "id": "zoned", "timezone": "Europe/London", "effective_from": "2026-09-01T00:00:00+01:00",
    "maintenance_notice": None,
}
AMENDMENTS = [
    # From October pb is no longer a party of agr (10.29: parties at opened_at).
    {"agreement": "agr", "effective_from": "2026-10-01T00:00:00Z", "providers": ["pa"]},
    # 10.25: zoned moves to New York in the middle of October.
    {"agreement": "zoned", "effective_from": "2026-10-15T00:00:00Z",
     "timezone": "America/New_York"},
]


def _open(incident: str, at: str, *, service: str = "net", priority: str = "P1",
          agreement: str = "agr") -> dict[str, Any]:
    return {"event_id": f"{incident}-o", "incident_id": incident, "type": "opened",
            "occurred_at": at, "actor": "cust", "agreement": agreement, "service": service,
            "priority": priority, "custody": "pa"}


def _event(incident: str, suffix: str, kind: str, at: str, actor: str = "pa",
           **fields: Any) -> dict[str, Any]:
    return {"event_id": f"{incident}-{suffix}", "incident_id": incident, "type": kind,
            "occurred_at": at, "actor": actor, **fields}


def _window(suffix: str, start: str, actor: str = "pa") -> dict[str, Any]:
    return {"event_id": f"w-{suffix}", "type": "maintenance_scheduled", "agreement": "agr",
            "service": "net", "occurred_at": "2026-09-01T00:00:00Z", "actor": actor,
            "start": start, "end": start.replace("T01:", "T02:")}


EVENTS: list[dict[str, Any]] = [
    # 19 and 20: a handoff at the instant of opened, the same priority re-sent.
    _open("I1", "2026-09-20T10:00:00Z"),
    _event("I1", "h", "handed_off", "2026-09-20T10:00:00Z", to="pb"),
    _event("I1", "p", "priority_changed", "2026-09-20T10:05:00Z", actor="cust", priority="P1"),
    _event("I1", "r", "responded", "2026-09-20T10:10:00Z", actor="pb"),
    _event("I1", "s", "outage_started", "2026-09-20T11:00:00Z", actor="pb", impact="0.5"),
    # 29: the same events re-sent, written differently: duplicates, not conflicts.
    _open("I1", "2026-09-20T11:00:00+01:00"),
    _event("I1", "s", "outage_started", "2026-09-20T12:00:00+01:00", actor="pb", impact="0.50"),
    # 21: not decimal strings.
    _event("I1", "bad1", "outage_started", "2026-09-20T11:30:00Z", actor="pb", impact=".5"),
    _event("I1", "bad2", "outage_started", "2026-09-20T11:30:00Z", actor="pb", impact=0.5),
    # 26: a desk incident missing the desk level; a net incident it does not apply to.
    _open("I2", "2026-09-21T10:00:00Z", service="desk"),
    _event("I2", "x", "resolved", "2026-09-21T12:00:00Z"),
    _open("I3", "2026-09-22T10:00:00Z"),
    # 24 and 27: Sunday 2027-03-28, London springs forward at 01:00 GMT.
    _open("I4", "2027-03-28T00:00:00Z", priority="P3"),
    # 22: maintenance before effective_from, by a non-party, and a good one.
    _window("early", "2026-09-05T01:00:00Z"),
    _window("outsider", "2026-09-25T01:00:00Z", actor="nobody"),
    _window("ok", "2026-09-26T01:00:00Z"),
    # 29: pb is a party of incidents opened before October, not after.
    _event("I3", "r", "responded", "2026-10-02T10:00:00Z", actor="pb"),
    _open("I6", "2026-10-05T10:00:00Z"),
    _event("I6", "r", "responded", "2026-10-05T10:05:00Z", actor="pb"),
    # 25: 02:00Z on 1 November is 31 October in New York, but November's.
    _open("Z1", "2026-11-01T02:00:00Z", agreement="zoned"),
    _open("Z2", "2026-10-31T23:30:00Z", agreement="zoned"),
]


def _load(tmp_path: Path, client: LedgerClient) -> LoadSummary:
    path = tmp_path / "readings.json"
    path.write_text(json.dumps({"agreements": [AGR, ZONED], "amendments": AMENDMENTS,
                                "events": EVENTS}, indent=1))
    return load_scenario(client, read_scenario(path))


def _level(report: dict[str, Any], level_id: str) -> dict[str, Any]:
    return next(sl for sl in report["service_levels"] if sl["id"] == level_id)


def test_readings_through_the_public_api(database_url: str, tmp_path: Path) -> None:
    with ledger_client(database_url, lambda: T) as (ledger, client):
        summary = _load(tmp_path, client)
        rejected = {EVENTS[r["index"]]["event_id"]: r["reason"] for r in summary.rejected}
        assert set(rejected) == {"I1-bad1", "I1-bad2", "w-early", "w-outsider", "I6-r"}
        assert "decimal string" in rejected["I1-bad1"] and "decimal string" in rejected["I1-bad2"]
        assert rejected["w-early"].startswith("invalid_timeline") and "before" in rejected["w-early"]
        assert "not a party" in rejected["w-outsider"] and "not a party" in rejected["I6-r"]
        assert summary.duplicates == 2  # the re-sent I1 events (29)
        assert summary.stored + summary.duplicates + len(rejected) == len(EVENTS) + 4

        # 19, 20: the re-sent priority changed nothing; no zero-length custody.
        i1 = incident_view_dict(client.incident_sla("I1", evaluated_at=parse_instant(SEPT)))
        assert i1["priority"] == "P1"
        assert i1["custody"] == [{"org": "pb", "from": "2026-09-20T10:00:00Z", "to": None}]
        assert i1["outages"][0]["to"] is None
        assert i1["service_levels"]["p1-response"]["outcome"] == "met"

        september = period_report_dict(client.period_report("agr", "2026-09", evaluated_at=T))
        # 26: the desk level counts the desk incident only.
        desk = _level(september, "desk-resolution")
        assert (desk["met"], desk["missed"], desk["pending"]) == (0, 1, 0)
        assert desk["incidents"]["missed"] == ["I2"]
        assert set(incident_view_dict(client.incident_sla("I3", evaluated_at=T))["service_levels"]) == {"p1-response"}
        # 23: the first period's availability is scheduled from effective_from
        # (20 days), less the qualifying one-hour window (22).
        net = _level(september, "net-availability")
        assert net["scheduled_seconds"] == f"{20 * 86400 - 3600}.000000"
        with pytest.raises(grpc.RpcError) as info:
            period_report_dict(client.period_report("agr", "2026-08", evaluated_at=T))
        assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert "2026-09" in (info.value.details() or "")

        # 24, 27: merged in local time the night's working time that Sunday is
        # 30 minutes, reached at 01:00Z; due_at stays there whatever T.
        for at in ("2027-03-28T01:00:00Z", "2027-03-30T00:00:00Z", "2027-04-02T12:00:00Z"):
            night = incident_view_dict(client.incident_sla("I4", evaluated_at=parse_instant(at)))
            clock = night["service_levels"]["p3-night"]
            assert clock["elapsed_seconds"] == "1800.000000"
            assert clock["outcome"] == "pending"
            assert clock["due_at"] == "2027-03-28T01:00:00Z"

        # 25: each incident's view names the month whose report counts it.
        for incident, period, other in (("Z1", "2026-11", "2026-10"), ("Z2", "2026-10", "2026-11")):
            assert incident_view_dict(client.incident_sla(incident, evaluated_at=T))["period"] == period
            counted = _level(period_report_dict(client.period_report("zoned", period, evaluated_at=T)), "p1-response")
            assert incident in counted["incidents"]["missed"]
            elsewhere = _level(period_report_dict(client.period_report("zoned", other, evaluated_at=T)), "p1-response")
            assert incident not in elsewhere["incidents"]["missed"]
        november = period_report_dict(client.period_report("zoned", "2026-11", evaluated_at=T))
        assert november["period_start"] == "2026-11-01T00:00:00Z"
        assert november["period_end"] == "2026-12-01T05:00:00Z"

        # The read models answer as the replay does, period by period.
        replay = ReportService(ledger.store, lambda: T)
        for agreement, period in (("agr", "2026-09"), ("agr", "2026-10"), ("agr", "2027-03"),
                                  ("zoned", "2026-10"), ("zoned", "2026-11")):
            served = period_report_dict(client.period_report(agreement, period, evaluated_at=T))
            assert served == period_report_dict(replay.period_report(LOCAL_ADMIN, agreement, period, T, None))


def test_server_refuses_an_impact_that_is_not_a_decimal_string(database_url: str,
                                                                tmp_path: Path) -> None:
    """10.21 at the gRPC boundary itself, not only in the loader."""
    with ledger_client(database_url, lambda: T) as (_, client):
        _load(tmp_path, client)
        for impact, accepted in ((".5", False), ("5e-1", False), ("+1", False), ("0.5", True)):
            msg = events_pb2.LedgerEvent(
                event_id=f"I3-impact-{impact}", incident_id="I3", actor="pa",
                occurred_at=timestamp_pb2.Timestamp(seconds=parse_instant(
                    "2026-09-22T11:00:00Z") // 10**6),
                outage_started=events_pb2.OutageStarted(impact=impact))
            request = incidents_pb2.AppendEventsRequest(events=[msg])
            if accepted:
                client.incidents.AppendEvents(request, timeout=30)
                continue
            with pytest.raises(grpc.RpcError) as info:
                client.incidents.AppendEvents(request, timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "impact" in (info.value.details() or "")
