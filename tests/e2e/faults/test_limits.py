"""The probes of issue 10 over the public API: bounded work per call and a
precise status for every extreme value, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from ledger.client.errors import decode_error
from ledger.grpc.limits import Limits
from ledger.v1 import (
    common_pb2,
    events_pb2,
    incidents_pb2,
    incidents_pb2_grpc,
    log_pb2,
    log_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
)
from tests.e2e.faults.harness import AGREEMENT_A, token, two_agreements
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e
YEAR = 365 * 24 * 3600


def _refusal(call: Any, request: Any) -> dict[str, Any]:
    with pytest.raises(grpc.RpcError) as info:
        result = call(request, timeout=30, metadata=[("authorization", f"Bearer {token('admin')}")])
        list(result) if hasattr(result, "__iter__") and not hasattr(result, "DESCRIPTOR") else None
    return dict(decode_error(info.value))


def _fields(decoded: dict[str, Any]) -> list[str]:
    return [v["field"] for v in decoded["field_violations"]]


def test_extreme_requests_are_refused_precisely_and_cheaply(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    now = clock.now // 1_000_000
    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture:
        before = fixture.ledger.store.max_position()
        with grpc.insecure_channel(fixture.target) as channel:
            incidents = incidents_pb2_grpc.IncidentServiceStub(channel)
            reports = reports_pb2_grpc.ReportServiceStub(channel)
            log = log_pb2_grpc.LogServiceStub(channel)
            opened = events_pb2.LedgerEvent(
                event_id="e", incident_id="INC-X", agreement_id=AGREEMENT_A, actor="herts",
                opened=events_pb2.Opened(service="desktop", custody="bt", priority=common_pb2.PRIORITY_P3))
            opened.occurred_at.seconds = now - 3600

            # 30,000 events in one append: refused before any work, nothing stored
            big = incidents_pb2.AppendEventsRequest(events=[opened] * 30_000)
            decoded = _refusal(incidents.AppendEvents, big)
            assert decoded["code"] == "INVALID_ARGUMENT" and _fields(decoded) == ["events"]

            # evaluation instants: a thousand years ahead, past year 9999, bad nanos
            for seconds, nanos in ((now + 1000 * YEAR, 0), (253_402_300_800, 0), (2**63 - 1, 0),
                                   (-62_135_596_801, 0), (now, -1), (now, 10**9)):
                request = reports_pb2.ListIncidentsAtRiskRequest()
                request.evaluated_at.seconds, request.evaluated_at.nanos = seconds, nanos
                decoded = _refusal(reports.ListIncidentsAtRisk, request)
                assert decoded["code"] == "INVALID_ARGUMENT"
                assert _fields(decoded) == ["evaluated_at"], decoded

            # an event's own instant with nanos out of range is not normalised
            skewed = events_pb2.LedgerEvent()
            skewed.CopyFrom(opened)
            skewed.occurred_at.nanos = -5
            decoded = _refusal(incidents.AppendEvents, incidents_pb2.AppendEventsRequest(events=[skewed]))
            assert _fields(decoded) == ["events[0].occurred_at"]

            # periods the calendars cannot compute
            for period in ("0000-01", "9999-12", "2026-13"):
                decoded = _refusal(reports.GetPeriodReport, reports_pb2.GetPeriodReportRequest(
                    agreement_id=AGREEMENT_A, period=period))
                assert decoded["code"] == "INVALID_ARGUMENT" and _fields(decoded) == ["period"]

            # a 20,000-character id: a short answer quoting a short prefix
            decoded = _refusal(incidents.GetIncident,
                               incidents_pb2.GetIncidentRequest(incident_id="I" * 20_000))
            assert decoded["code"] == "INVALID_ARGUMENT" and _fields(decoded) == ["incident_id"]
            assert len(decoded["message"]) < 200

            # negative page sizes and positions
            decoded = _refusal(incidents.ListIncidents, incidents_pb2.ListIncidentsRequest(page_size=-1))
            assert _fields(decoded) == ["page_size"]
            decoded = _refusal(log.ReadLog, log_pb2.ReadLogRequest(after_position=-1))
            assert decoded["code"] == "INVALID_ARGUMENT"

            # a body that is not the method's message at all
            raw = channel.unary_unary("/ledger.v1.IncidentService/AppendEvents")
            decoded = _refusal(raw, b"\xff\xff\xff\xff")
            assert decoded["code"] == "INVALID_ARGUMENT" and _fields(decoded) == ["request"]
            assert "DecodeError" not in decoded["message"]
        assert fixture.ledger.store.max_position() == before


def test_every_paged_rpc_refuses_a_negative_page_and_keeps_the_configured_cap(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    with two_agreements(database_url, clock, tmp_path, with_b=False,
                        limits=Limits(max_page_size=2)) as fixture, \
            grpc.insecure_channel(fixture.target) as channel:
        incidents = incidents_pb2_grpc.IncidentServiceStub(channel)
        reports = reports_pb2_grpc.ReportServiceStub(channel)
        for call, request in (
                (incidents.ListIncidents, incidents_pb2.ListIncidentsRequest(page_size=-1)),
                (reports.ListIncidentsAtRisk, reports_pb2.ListIncidentsAtRiskRequest(page_size=-1)),
                (reports.ListClaims, reports_pb2.ListClaimsRequest(page_size=-1, include_in_effect=True))):
            decoded = _refusal(call, request)
            assert decoded["code"] == "INVALID_ARGUMENT" and _fields(decoded) == ["page_size"], call

        metadata = [("authorization", f"Bearer {token('admin')}")]
        page = incidents.ListIncidents(incidents_pb2.ListIncidentsRequest(
            agreement_id=AGREEMENT_A, page_size=1000), timeout=30, metadata=metadata)
        assert len(page.incidents) == 2 and page.next_page_token
        claims = reports.ListClaims(reports_pb2.ListClaimsRequest(
            agreement_id=AGREEMENT_A, page_size=1000, include_in_effect=True), timeout=30, metadata=metadata)
        assert len(claims.claims) == 2
