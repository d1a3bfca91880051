"""The authorization matrix: every RPC, for every role, and for the parties
of another agreement. A party of agreement B asking about agreement A is
denied with exactly the answer it gets for an agreement that does not exist
(reading 28: nothing it is told depends on what it cannot see), and stores
nothing; the same incident and event ids in its own agreement are its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from ledger.client import convert
from ledger.v1 import (
    agreements_pb2,
    audit_pb2,
    common_pb2,
    events_pb2,
    incidents_pb2,
    log_pb2,
    reports_pb2,
)
from tests.e2e.faults.harness import AGREEMENT_A, AGREEMENT_B, PRINCIPALS, token, two_agreements
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e
INCIDENT = "INC-1003"
MISSING = "zz-no-such-agreement"
OUTSIDERS = ("b-customer", "b-provider")

Request = tuple[str, Any, Any]  # method path, request, response class


def _event(agreement: str, actor: str, now: int, **kind: Any) -> events_pb2.LedgerEvent:
    event = events_pb2.LedgerEvent(event_id=f"probe-{agreement}", incident_id=INCIDENT,
                                   agreement_id=agreement, actor=actor, **kind)
    event.occurred_at.CopyFrom(convert.micros_to_timestamp(now - 60 * 10**6))
    return event


def requests(agreement: str, actor: str, now: int, event_id: str) -> dict[str, Request]:
    """One request per RPC, every one aimed at ``agreement``."""
    at = convert.micros_to_timestamp(now)
    return {
        "RegisterAgreement": ("/ledger.v1.AgreementService/RegisterAgreement",
                              agreements_pb2.RegisterAgreementRequest(
                                  agreement=agreements_pb2.Agreement(id=agreement)),
                              agreements_pb2.RegisterAgreementResponse),
        "AmendAgreement": ("/ledger.v1.AgreementService/AmendAgreement",
                           agreements_pb2.AmendAgreementRequest(
                               event_id="probe", agreement_id=agreement, effective_from=at),
                           agreements_pb2.AmendAgreementResponse),
        "GetAgreement": ("/ledger.v1.AgreementService/GetAgreement",
                         agreements_pb2.GetAgreementRequest(agreement_id=agreement),
                         agreements_pb2.GetAgreementResponse),
        "AppendEvents/responded": ("/ledger.v1.IncidentService/AppendEvents",
                                   incidents_pb2.AppendEventsRequest(events=[_event(
                                       agreement, actor, now, responded=events_pb2.Responded())]),
                                   incidents_pb2.AppendEventsResponse),
        "AppendEvents/opened": ("/ledger.v1.IncidentService/AppendEvents",
                                incidents_pb2.AppendEventsRequest(events=[_event(
                                    agreement, actor, now, opened=events_pb2.Opened(
                                        service="desktop", custody="bt", priority=common_pb2.PRIORITY_P3))]),
                                incidents_pb2.AppendEventsResponse),
        "GetIncident": ("/ledger.v1.IncidentService/GetIncident",
                        incidents_pb2.GetIncidentRequest(incident_id=INCIDENT,
                                                         agreement_id=agreement),
                        incidents_pb2.GetIncidentResponse),
        "ListIncidents": ("/ledger.v1.IncidentService/ListIncidents",
                          incidents_pb2.ListIncidentsRequest(agreement_id=agreement),
                          incidents_pb2.ListIncidentsResponse),
        "ReadLog": ("/ledger.v1.LogService/ReadLog",
                    log_pb2.ReadLogRequest(agreement_id=agreement), log_pb2.ReadLogResponse),
        "GetPeriodReport": ("/ledger.v1.ReportService/GetPeriodReport",
                            reports_pb2.GetPeriodReportRequest(agreement_id=agreement,
                                                               period="2026-10", evaluated_at=at),
                            reports_pb2.GetPeriodReportResponse),
        "GetIncidentSla": ("/ledger.v1.ReportService/GetIncidentSla",
                           reports_pb2.GetIncidentSlaRequest(incident_id=INCIDENT,
                                                             agreement_id=agreement,
                                                             evaluated_at=at),
                           reports_pb2.GetIncidentSlaResponse),
        "ListIncidentsAtRisk": ("/ledger.v1.ReportService/ListIncidentsAtRisk",
                                reports_pb2.ListIncidentsAtRiskRequest(agreement_id=agreement,
                                                                       evaluated_at=at),
                                reports_pb2.ListIncidentsAtRiskResponse),
        "GetRestatement": ("/ledger.v1.ReportService/GetRestatement",
                           _restatement(agreement, at), reports_pb2.GetRestatementResponse),
        "GetStatement": ("/ledger.v1.ReportService/GetStatement",
                         reports_pb2.GetStatementRequest(agreement_id=agreement, period="2026-10",
                                                         evaluated_at=at),
                         reports_pb2.GetStatementResponse),
        "GetInclusionProof": ("/ledger.v1.AuditService/GetInclusionProof",
                              audit_pb2.GetInclusionProofRequest(event_id=event_id,
                                                                 agreement_id=agreement),
                              audit_pb2.GetInclusionProofResponse),
        "ListLeaves": ("/ledger.v1.AuditService/ListLeaves",
                       audit_pb2.ListLeavesRequest(agreement_id=agreement),
                       audit_pb2.ListLeavesResponse),
    }


def _restatement(agreement: str, at: Any) -> Any:
    request = reports_pb2.GetRestatementRequest(agreement_id=agreement, period="2026-10",
                                                evaluated_at=at)
    getattr(request, "from").position = 1
    return request


def _answer(channel: grpc.Channel, name: str, request: Request) -> tuple[str, str]:
    path, message, response = request
    metadata = [("authorization", f"Bearer {token(name)}")]
    try:
        if path.endswith("/ReadLog"):
            call = channel.unary_stream(path, request_serializer=type(message).SerializeToString,
                                        response_deserializer=response.FromString)
            received = list(call(message, timeout=30, metadata=metadata))
            return "OK", str(len(received))
        call = channel.unary_unary(path, request_serializer=type(message).SerializeToString,
                                   response_deserializer=response.FromString)
        result = call(message, timeout=30, metadata=metadata)
        return "OK", str(len(result.SerializeToString()))
    except grpc.RpcError as exc:
        return exc.code().name, exc.details() or ""


def test_authorization_matrix(database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    tried = denied = 0
    with two_agreements(database_url, clock, tmp_path) as fixture:
        store: Callable[[], int] = fixture.ledger.store.max_position
        event_id = fixture.ledger.store.read_log(0, 1)[0].event_id  # A's first event
        with grpc.insecure_channel(fixture.target) as channel:
            # the parties of B ask about A: the answer for an agreement that does not exist
            before = store()
            for name in OUTSIDERS:
                org = PRINCIPALS[name][0]
                about_a = requests(AGREEMENT_A, org, clock.now, event_id)
                about_nothing = requests(MISSING, org, clock.now, event_id)
                for rpc, request in about_a.items():
                    tried += 1
                    got = _answer(channel, name, request)
                    expected = _answer(channel, name, about_nothing[rpc])
                    assert got[0] != "OK" or rpc in ("ListIncidents", "ReadLog", "ListLeaves"), \
                        (name, rpc, got)
                    assert got == (expected[0], expected[1].replace(MISSING, AGREEMENT_A)) or \
                        got == expected, (name, rpc, got, expected)
                    denied += got[0] != "OK" or got == expected
            assert store() == before, "a denied call stored something"

            # every role, every RPC, about A: a status, never UNKNOWN or INTERNAL;
            # auditors never write; only admins register and amend
            for name, (org, role) in PRINCIPALS.items():
                for rpc, request in requests(AGREEMENT_A, org, clock.now, event_id).items():
                    code, details = _answer(channel, name, request)
                    assert code not in ("UNKNOWN", "INTERNAL"), (name, rpc, code, details)
                    if role == "auditor" and rpc.startswith(("AppendEvents", "Register", "Amend")):
                        assert code == "PERMISSION_DENIED", (name, rpc, code)
                    if role != "admin" and rpc in ("RegisterAgreement", "AmendAgreement"):
                        assert code == "PERMISSION_DENIED", (name, rpc, code)

            # listings and the public audit calls: nothing of A in them
            for name in OUTSIDERS:
                tried += 1
                with fixture.client(name) as client:
                    listed = client.agreements.ListAgreements(
                        agreements_pb2.ListAgreementsRequest(), metadata=client.metadata)
                    if [a.id for a in listed.agreements] == [AGREEMENT_B]:
                        denied += 1

            # B's own INC-1003 (the same ids as A's) is B's: its parties see it
            # without naming the agreement, and reuse A's event ids freely
            for name in OUTSIDERS:
                with fixture.client(name) as client:
                    incident = client.get_incident(INCIDENT).incident
                    assert incident.agreement_id == AGREEMENT_B
    print(f"\nauthorization ({database_url.split(':', maxsplit=1)[0]}): {denied} of {tried} cases denied, "
          "each exactly as for an agreement that does not exist")
    assert denied == tried
