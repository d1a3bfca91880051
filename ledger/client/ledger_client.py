"""A small typed client for partner systems.

    client = LedgerClient("ledger.example:50051", token=os.environ["LEDGER_TOKEN"])
    client.append([LedgerEvent(...)])

It fills missing event_ids (once, before the first attempt, so a retried call
carries the same keys) and sets a deadline on every call. gRPC itself retries
UNAVAILABLE and ABORTED (safe because appends are idempotent), by the
``retryPolicy`` of the channel's service config: jittered exponential backoff,
or exactly the delay the server pushes back with (``grpc-retry-pushback-ms``,
never less than its ``google.rpc.RetryInfo``; ledger.grpc.errors).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import grpc

from ledger.audit.checkpoint import Verifier
from ledger.client.audit_client import AuditClient
from ledger.client.convert import (
    agreement_to_proto_terms,
    changes_to_proto,
    event_from_proto,
    event_to_proto,
    micros_to_duration,
    micros_to_timestamp,
    timestamp_to_micros,
)
from ledger.client.report_convert import clock_from_proto, report_from_proto
from ledger.domain.agreements import AgreementTerms, TermsChanges
from ledger.domain.events import AppendResult, ClaimAccepted, ClaimDisputed, LedgerEvent
from ledger.domain.sla.incident_json import incident_view_from_dict
from ledger.domain.sla.incident_view import IncidentView
from ledger.domain.sla.report import ClockAtRisk, PeriodReport
from ledger.v1 import (
    agreements_pb2,
    agreements_pb2_grpc,
    audit_pb2_grpc,
    incidents_pb2,
    incidents_pb2_grpc,
    log_pb2,
    log_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
)

T = TypeVar("T")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
#: No single wait between attempts grows beyond this (seconds).
MAX_BACKOFF = 5.0
#: gRPC clamps ``retryPolicy.maxAttempts`` to this (gRFC A6).
MAX_ATTEMPTS = 5
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def retry_service_config(attempts: int, backoff: float, *, wait_for_ready: bool = False) -> str:
    """The channel's service config: every method retried on UNAVAILABLE and
    ABORTED, at most ``attempts`` attempts (gRPC allows 5), waiting a random
    time up to ``backoff`` * 2^(n-1) seconds (at most ``MAX_BACKOFF``) before
    attempt n+1, unless the server pushed back with its own delay."""
    method: dict[str, Any] = {"name": [{}]}  # an empty name: every method of every service
    if wait_for_ready:
        method["waitForReady"] = True
    if attempts > 1:
        method["retryPolicy"] = {
            "maxAttempts": min(attempts, MAX_ATTEMPTS),
            "initialBackoff": f"{backoff:.6f}s",
            "maxBackoff": f"{MAX_BACKOFF:g}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": [code.name for code in RETRYABLE],
        }
    return json.dumps({"methodConfig": [method]})


R = TypeVar("R")


def _when(request: R, evaluated_at: int | None, position: int | None, instant: int | None) -> R:
    """Sets a report request's evaluation instant and knowledge cut."""
    if evaluated_at is not None:
        request.evaluated_at.CopyFrom(micros_to_timestamp(evaluated_at))  # type: ignore[attr-defined]
    if position is not None:
        request.as_recorded_at.position = position  # type: ignore[attr-defined]
    if instant is not None:
        request.as_recorded_at.recorded_at.CopyFrom(  # type: ignore[attr-defined]
            micros_to_timestamp(instant))
    return request


class LedgerClient:
    """``attempts``: tries per call (gRPC allows at most 5), ``backoff``: the
    first retry's largest wait in seconds; ``timeout`` bounds a whole call, its
    retries included. With ``wait_for_ready`` a call made while the server is
    unreachable waits for it (within the timeout) instead of failing
    UNAVAILABLE at once: for clients that must ride through a restart."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        client_key: bytes | None = None,
        client_certificate: bytes | None = None,
        timeout: float = 30.0,
        attempts: int = MAX_ATTEMPTS,
        backoff: float = 0.2,
        wait_for_ready: bool = False,
        log_key: Verifier | str | None = None,
        trusted_checkpoint: str | None = None,
    ) -> None:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.service_config", retry_service_config(attempts, backoff,
                                                         wait_for_ready=wait_for_ready)),
            # A request is retried only while gRPC still holds all of it.
            ("grpc.per_rpc_retry_buffer_size", MAX_MESSAGE_BYTES),
            # Reconnect to a restarted server within seconds, not minutes.
            ("grpc.initial_reconnect_backoff_ms", int(backoff * 1000) or 1),
            ("grpc.max_reconnect_backoff_ms", int(MAX_BACKOFF * 1000)),
        ]
        if root_certificates is not None or client_certificate is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates, client_key, client_certificate)
            self.channel = grpc.secure_channel(target, credentials, options)
        else:
            self.channel = grpc.insecure_channel(target, options)
        self.metadata: list[tuple[str, str]] = []
        if token:
            self.metadata.append(("authorization", f"Bearer {token}"))
        self.timeout = timeout
        self.agreements = agreements_pb2_grpc.AgreementServiceStub(self.channel)
        self.incidents = incidents_pb2_grpc.IncidentServiceStub(self.channel)
        self.log = log_pb2_grpc.LogServiceStub(self.channel)
        self.reports = reports_pb2_grpc.ReportServiceStub(self.channel)
        # verified audit calls (log_key: the ledger's note verifier key)
        self.audit = AuditClient(self._call, audit_pb2_grpc.AuditServiceStub(self.channel),
                                 log_key=log_key, trusted_note=trusted_checkpoint)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any) -> T:
        return method(request, timeout=self.timeout, metadata=self.metadata)

    # -- agreements ------------------------------------------------------------
    def register_agreement(self, agreement_id: str, effective_from: int, terms: AgreementTerms,
                           event_id: str = "") -> AppendResult:
        request = agreements_pb2.RegisterAgreementRequest(
            event_id=event_id or str(uuid.uuid4()),
            agreement=agreement_to_proto_terms(agreement_id, effective_from, terms))
        response = self._call(self.agreements.RegisterAgreement, request)
        return AppendResult(request.event_id, response.position, response.duplicate)

    def amend_agreement(self, agreement_id: str, effective_from: int,
                        changes: TermsChanges | AgreementTerms,
                        event_id: str = "") -> AppendResult:
        """Amends the terms named in `changes` (complete terms name all)."""
        if isinstance(changes, AgreementTerms):
            changes = TermsChanges.complete(changes)
        terms, paths = changes_to_proto(changes)
        request = agreements_pb2.AmendAgreementRequest(
            event_id=event_id or str(uuid.uuid4()), agreement_id=agreement_id,
            effective_from=micros_to_timestamp(effective_from), terms=terms)
        request.update_mask.paths.extend(paths)
        response = self._call(self.agreements.AmendAgreement, request)
        return AppendResult(request.event_id, response.position, response.duplicate)

    def get_agreement(self, agreement_id: str) -> agreements_pb2.Agreement:
        response = self._call(self.agreements.GetAgreement,
                              agreements_pb2.GetAgreementRequest(agreement_id=agreement_id))
        agreement: agreements_pb2.Agreement = response.agreement
        return agreement

    def list_agreements(self) -> list[agreements_pb2.Agreement]:
        """Every agreement the caller may see, all pages."""
        out: list[agreements_pb2.Agreement] = []
        token = ""
        while True:
            response = self._call(self.agreements.ListAgreements,
                                  agreements_pb2.ListAgreementsRequest(page_size=1000, page_token=token))
            out.extend(response.agreements)
            token = response.next_page_token
            if not token:
                return out

    # -- incidents -------------------------------------------------------------
    def append(self, events: Sequence[LedgerEvent], *, validate_only: bool = False) -> list[AppendResult]:
        """With validate_only the server checks and answers, storing nothing."""
        filled = [e if e.event_id else replace(e, event_id=str(uuid.uuid4())) for e in events]
        request = incidents_pb2.AppendEventsRequest(events=[event_to_proto(e) for e in filled],
                                                    validate_only=validate_only)
        response = self._call(self.incidents.AppendEvents, request)
        return [AppendResult(r.event_id, r.position, r.duplicate) for r in response.results]

    def get_incident(self, incident_id: str, agreement_id: str = "") -> incidents_pb2.GetIncidentResponse:
        response: incidents_pb2.GetIncidentResponse = self._call(
            self.incidents.GetIncident, incidents_pb2.GetIncidentRequest(
                incident_id=incident_id, agreement_id=agreement_id))
        return response

    def list_incidents(self, agreement_id: str = "", status: str = "") -> list[incidents_pb2.Incident]:
        """Every incident the caller may see (of one agreement, in one status), all pages."""
        statuses = {"": 0, "open": 1, "resolved": 2, "closed": 3, "voided": 4}
        out: list[incidents_pb2.Incident] = []
        token = ""
        while True:
            response = self._call(self.incidents.ListIncidents, incidents_pb2.ListIncidentsRequest(
                agreement_id=agreement_id, status=statuses[status],  # type: ignore[arg-type]
                page_size=1000, page_token=token))
            out.extend(response.incidents)
            token = response.next_page_token
            if not token:
                return out

    def at_risk(self, agreement_id: str = "", *, evaluated_at: int | None = None,
                ) -> list[ClockAtRisk]:
        """Running clocks ordered by due_at."""
        request = reports_pb2.ListIncidentsAtRiskRequest(agreement_id=agreement_id, page_size=1000)
        if evaluated_at is not None:
            request.evaluated_at.CopyFrom(micros_to_timestamp(evaluated_at))
        response = self._call(self.reports.ListIncidentsAtRisk, request)
        return [clock_from_proto(c) for c in response.clocks]

    def read_log(self, after: int = 0, *, follow: bool = False, agreement_id: str = "",
                 incident_id: str = "", to_position: int = 0,
                 timeout: float | None = None) -> Iterator[tuple[int, LedgerEvent]]:
        """Yields (position, event). With follow the stream stays open; resume
        after a disconnect by passing the last position received."""
        request = log_pb2.ReadLogRequest(after_position=after, follow=follow,
                                         agreement_id=agreement_id, incident_id=incident_id,
                                         to_position=to_position)
        stream = self.log.ReadLog(request, timeout=timeout if follow else (timeout or self.timeout),
                                  metadata=self.metadata)
        for message in stream:
            recorded = message.event
            event = event_from_proto(recorded.event, "event")
            yield recorded.position, replace(
                event, position=recorded.position,
                recorded_at=timestamp_to_micros(recorded.recorded_at, "recorded_at"),
                submitted_by=recorded.submitted_by)

    # -- reports ---------------------------------------------------------------
    def period_report(self, agreement_id: str, period: str, *, evaluated_at: int | None = None,
                      as_recorded_position: int | None = None,
                      as_recorded_instant: int | None = None,
                      include_incidents: bool = True) -> PeriodReport:
        """The period report; ``period_report_dict`` renders it in the
        scenario format (what ``sla-ledger report --format json`` prints)."""
        request = _when(reports_pb2.GetPeriodReportRequest(
            agreement_id=agreement_id, period=period, omit_incident_ids=not include_incidents),
            evaluated_at, as_recorded_position, as_recorded_instant)
        response = self._call(self.reports.GetPeriodReport, request)
        return report_from_proto(response.report)

    def restatement(self, agreement_id: str, period: str, *, evaluated_at: int | None = None,
                    from_cut: dict[str, int], to_cut: dict[str, int] | None = None) -> dict[str, Any]:
        """What changed between two knowledge cuts, each given as
        {"as_recorded_position": N} or {"as_recorded_instant": µs}."""
        request = reports_pb2.GetRestatementRequest(agreement_id=agreement_id, period=period)
        if evaluated_at is not None:
            request.evaluated_at.CopyFrom(micros_to_timestamp(evaluated_at))
        for field, cut in (("from", from_cut), ("to", to_cut or {})):
            target = getattr(request, field)
            if "as_recorded_position" in cut:
                target.position = cut["as_recorded_position"]
            elif "as_recorded_instant" in cut:
                target.recorded_at.CopyFrom(micros_to_timestamp(cut["as_recorded_instant"]))
        response = self._call(self.reports.GetRestatement, request)
        result: dict[str, Any] = json.loads(response.restatement_json)
        return result

    def statement(self, agreement_id: str, period: str, *, evaluated_at: int | None = None,
                  as_recorded_position: int | None = None,
                  as_recorded_instant: int | None = None) -> dict[str, Any]:
        request = _when(reports_pb2.GetStatementRequest(agreement_id=agreement_id, period=period),
                        evaluated_at, as_recorded_position, as_recorded_instant)
        response = self._call(self.reports.GetStatement, request)
        result: dict[str, Any] = json.loads(response.statement_json)
        return result

    def claims(self, *, agreement_id: str = "", period: str = "", awaiting: str = "",
               event_id: str = "", evaluated_at: int | None = None,
               deemed_within: int | None = None, include_in_effect: bool = False,
               page_size: int = 1000) -> list[reports_pb2.Claim]:
        """Claims of section 11 at an instant (default: those not in effect)."""
        request = reports_pb2.ListClaimsRequest(
            agreement_id=agreement_id, period=period, awaiting=awaiting, event_id=event_id,
            include_in_effect=include_in_effect, page_size=page_size)
        if evaluated_at is not None:
            request.evaluated_at.CopyFrom(micros_to_timestamp(evaluated_at))
        if deemed_within is not None:
            request.deemed_within.CopyFrom(micros_to_duration(deemed_within))
        response: reports_pb2.ListClaimsResponse = self._call(self.reports.ListClaims, request)
        return list(response.claims)

    def answer_claim(self, event_id: str, *, accept: bool, occurred_at: int, reason: str = "",
                     actor: str = "", answer_id: str = "",
                     agreement_id: str = "") -> AppendResult:
        """Accepts or disputes the claim made by `event_id`, as the caller's
        org (or `actor`, for an admin acting on an org's behalf)."""
        found = self.claims(event_id=event_id, agreement_id=agreement_id,
                            include_in_effect=True)
        if len(found) > 1:
            # Event ids are unique within an agreement only (reading 28).
            raise LookupError(f"event {event_id!r} is a claim in several agreements: "
                              "name the agreement")
        if not found:
            # Unknown, not a claim, or on an agreement the caller cannot see:
            # one answer for all three (nothing about others' agreements leaks).
            raise LookupError(f"event {event_id!r} is not a claim you can see")
        claim = found[0]
        payload: ClaimAccepted | ClaimDisputed = (
            ClaimAccepted(event_id) if accept else ClaimDisputed(event_id, reason))
        event = LedgerEvent(
            event_id=answer_id, agreement_id=claim.agreement_id, incident_id=claim.incident_id,
            occurred_at=occurred_at, actor=actor, payload=payload)
        return self.append([event])[0]

    def incident_sla(self, incident_id: str, *, evaluated_at: int | None = None,
                     as_recorded_position: int | None = None,
                     agreement_id: str = "") -> IncidentView:
        """The incident's typed view, read from its JSON contract (rendered
        back byte for byte by ``incident_json.incident_view_dict``)."""
        request = reports_pb2.GetIncidentSlaRequest(incident_id=incident_id,
                                                    agreement_id=agreement_id)
        if evaluated_at is not None:
            request.evaluated_at.CopyFrom(micros_to_timestamp(evaluated_at))
        if as_recorded_position is not None:
            request.as_recorded_at.position = as_recorded_position
        response = self._call(self.reports.GetIncidentSla, request)
        return incident_view_from_dict(json.loads(response.incident_json))

