"""ReportService: thin adapter over ledger.application.reports."""

from __future__ import annotations

import json
from typing import Any

import grpc

from ledger.application.claims import ClaimQuery, ClaimService
from ledger.application.reports import Cut, ReportService
from ledger.application.statements import StatementService
from ledger.client import convert
from ledger.client.report_convert import clock_to_proto, report_to_proto
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from ledger.grpc.auth import current_principal
from ledger.grpc.limits import DEFAULT_LIMITS, Limits, page_size
from ledger.grpc.servicers import Executors
from ledger.v1 import reports_pb2, reports_pb2_grpc


def _json_text(value: Any) -> str:
    """The text of the JSON string fields (report_json and its siblings):
    compact, keys in the order the rendering gives them, not sorted."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def cut_from_proto(msg: reports_pb2.KnowledgeCut, field: str) -> Cut | None:
    which = msg.WhichOneof("cut")
    if which == "position":
        return Cut(position=msg.position)
    if which == "recorded_at":
        return Cut(recorded_at=convert.timestamp_to_micros(msg.recorded_at, f"{field}.recorded_at"))
    return None


def _question(request: reports_pb2.GetPeriodReportRequest | reports_pb2.GetIncidentSlaRequest
              | reports_pb2.GetStatementRequest) -> tuple[int | None, Cut | None]:
    """(evaluated_at, knowledge cut) of a report request; None: now, everything."""
    evaluated = (convert.timestamp_to_micros(request.evaluated_at, "evaluated_at")
                 if request.HasField("evaluated_at") else None)
    cut = cut_from_proto(request.as_recorded_at, "as_recorded_at") if request.HasField("as_recorded_at") else None
    return evaluated, cut


class ReportServicer(reports_pb2_grpc.ReportServiceServicer):
    def __init__(self, reports: ReportService, executors: Executors,
                 statements: StatementService | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.reports = reports
        self.executors = executors
        self.limits = limits
        self.statements = statements or StatementService(reports)
        self.claims = ClaimService(reports)

    async def GetPeriodReport(self, request: reports_pb2.GetPeriodReportRequest,
                             context: grpc.aio.ServicerContext) -> reports_pb2.GetPeriodReportResponse:
        principal = current_principal()
        evaluated, cut = _question(request)
        report = await self.executors.read(lambda: self.reports.period_report(
            principal, request.agreement_id, request.period, evaluated, cut,
            include_incidents=not request.omit_incident_ids))
        # report_json is deprecated but still filled: clients written before
        # the structured report read it.
        return reports_pb2.GetPeriodReportResponse(
            report_json=_json_text(period_report_dict(report)),
            report=report_to_proto(report))

    async def GetIncidentSla(self, request: reports_pb2.GetIncidentSlaRequest,
                            context: grpc.aio.ServicerContext) -> reports_pb2.GetIncidentSlaResponse:
        principal = current_principal()
        evaluated, cut = _question(request)
        view = await self.executors.read(lambda: self.reports.incident_view(
            principal, request.incident_id, evaluated, cut, request.agreement_id))
        return reports_pb2.GetIncidentSlaResponse(
            incident_json=_json_text(incident_view_dict(view)))


    async def ListIncidentsAtRisk(self, request: reports_pb2.ListIncidentsAtRiskRequest,
                                 context: grpc.aio.ServicerContext) -> reports_pb2.ListIncidentsAtRiskResponse:
        principal = current_principal()
        evaluated = (convert.timestamp_to_micros(request.evaluated_at, "evaluated_at")
                     if request.HasField("evaluated_at") else None)
        size = page_size(request.page_size, self.limits)
        clocks = await self.executors.read(lambda: self.reports.clocks_at_risk(
            principal, request.agreement_id or None, evaluated))
        return reports_pb2.ListIncidentsAtRiskResponse(
            clocks=[clock_to_proto(c) for c in clocks[:size]])

    async def GetRestatement(self, request: reports_pb2.GetRestatementRequest,
                            context: grpc.aio.ServicerContext) -> reports_pb2.GetRestatementResponse:
        principal = current_principal()
        evaluated = (convert.timestamp_to_micros(request.evaluated_at, "evaluated_at")
                     if request.HasField("evaluated_at") else None)
        from_cut = cut_from_proto(getattr(request, "from"), "from") or Cut()
        to_cut = cut_from_proto(request.to, "to") if request.HasField("to") else None
        result = await self.executors.read(lambda: self.reports.restatement(
            principal, request.agreement_id, request.period, evaluated, from_cut, to_cut))
        return reports_pb2.GetRestatementResponse(restatement_json=_json_text(result))


    async def ListClaims(self, request: reports_pb2.ListClaimsRequest,
                        context: grpc.aio.ServicerContext) -> reports_pb2.ListClaimsResponse:
        principal = current_principal()
        evaluated = (convert.timestamp_to_micros(request.evaluated_at, "evaluated_at")
                     if request.HasField("evaluated_at") else None)
        query = ClaimQuery(
            agreement_id=request.agreement_id or None, period=request.period or None,
            awaiting=request.awaiting or None, event_id=request.event_id or None,
            deemed_within=(convert.duration_to_micros(request.deemed_within, "deemed_within")
                           if request.HasField("deemed_within") else None),
            include_in_effect=request.include_in_effect)
        size = page_size(request.page_size, self.limits)
        claims = await self.executors.read(
            lambda: self.claims.claims(principal, query, evaluated))
        return reports_pb2.ListClaimsResponse(claims=[convert.claim_to_proto(c) for c in claims[:size]])

    async def GetStatement(self, request: reports_pb2.GetStatementRequest,
                          context: grpc.aio.ServicerContext) -> reports_pb2.GetStatementResponse:
        principal = current_principal()
        evaluated, cut = _question(request)
        statement = await self.executors.read(lambda: self.statements.statement(
            principal, request.agreement_id, request.period, evaluated, cut))
        return reports_pb2.GetStatementResponse(statement_json=_json_text(statement))


def register_reports(server: grpc.aio.Server, reports: ReportService, executors: Executors,
                     statements: StatementService | None = None,
                     limits: Limits = DEFAULT_LIMITS) -> list[str]:
    reports_pb2_grpc.add_ReportServiceServicer_to_server(
        ReportServicer(reports, executors, statements, limits), server)
    return [reports_pb2.DESCRIPTOR.services_by_name["ReportService"].full_name]
