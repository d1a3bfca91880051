"""Thin gRPC servicers: authenticate (via the interceptor), convert, call the
application service off the event loop, convert back. No rules here."""

from __future__ import annotations

import asyncio
import base64
import functools
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc

from ledger.application.group_commit import GroupCommitter
from ledger.application.incident_list import IncidentListing, IncidentQuery
from ledger.application.incidents import IncidentSummary, summarise
from ledger.application.integrity import Integrity
from ledger.application.ledger_service import LedgerService
from ledger.application.log_feed import LogFeed
from ledger.application.log_reads import BATCH, LogReads
from ledger.client import convert
from ledger.domain.access import Principal
from ledger.domain.errors import InvalidArgument
from ledger.domain.events import AppendResult, LedgerEvent
from ledger.domain.timeline import effective_timeline, timeline_key
from ledger.grpc.auth import current_principal
from ledger.grpc.limits import DEFAULT_LIMITS, Limits, page_size
from ledger.v1 import (
    agreements_pb2,
    agreements_pb2_grpc,
    incidents_pb2,
    incidents_pb2_grpc,
    log_pb2,
    log_pb2_grpc,
)

T = TypeVar("T")
_STATUS = {"open": 1, "resolved": 2, "closed": 3, "voided": 4}
_STATUS_NAMES = {v: k for k, v in _STATUS.items()}


class Executors:
    """The group-committing writer (appends share transactions, agreement
    writes run alone in queue order) and a small reader pool."""

    def __init__(self, committer: GroupCommitter, readers: int = 4) -> None:
        self.committer = committer
        self.readers = ThreadPoolExecutor(readers, thread_name_prefix="ledger-reader")

    async def write(self, fn: Callable[[], T]) -> T:
        return await self.committer.write(fn)

    async def append(self, principal: Principal, events: Sequence[LedgerEvent]) -> list[AppendResult]:
        return await self.committer.append(principal, events)

    async def read(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.readers, fn)

    def shutdown(self, timeout: float | None = None) -> None:
        """Drops queued work and waits up to ``timeout`` seconds (None: for
        ever) for running calls: every database call ends within the
        statement timeout, so a bounded wait loses nothing committed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.committer.close(timeout)
        self.readers.shutdown(wait=False, cancel_futures=True)
        for thread in list(getattr(self.readers, "_threads", ())):
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            thread.join(left)


def _encode_token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _decode_token(token: str) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("page_token", "is not a token this server issued") from None


def _require_intact(integrity: Integrity | None) -> None:
    if integrity is not None:
        integrity.require_intact()


class AgreementServicer(agreements_pb2_grpc.AgreementServiceServicer):
    def __init__(self, service: LedgerService, executors: Executors,
                 integrity: Integrity | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.service = service
        self.executors = executors
        self.integrity = integrity
        self.limits = limits

    async def RegisterAgreement(self, request: agreements_pb2.RegisterAgreementRequest,
                               context: grpc.aio.ServicerContext) -> agreements_pb2.RegisterAgreementResponse:
        principal = current_principal()
        principal.require_admin("register agreements")
        _require_intact(self.integrity)
        agreement = request.agreement
        if not agreement.id:
            raise InvalidArgument("agreement.id", "is required")
        if not agreement.HasField("effective_from"):
            raise InvalidArgument("agreement.effective_from", "is required")
        terms = convert.terms_from_proto(agreement.terms, "agreement.terms")
        effective_from = convert.timestamp_to_micros(agreement.effective_from, "agreement.effective_from")
        event_id = request.event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"agreement:{agreement.id}"))
        result = await self.executors.write(lambda: self.service.register_agreement(
            principal, event_id, agreement.id, effective_from, terms))
        return agreements_pb2.RegisterAgreementResponse(position=result.position, duplicate=result.duplicate)

    async def AmendAgreement(self, request: agreements_pb2.AmendAgreementRequest,
                            context: grpc.aio.ServicerContext) -> agreements_pb2.AmendAgreementResponse:
        principal = current_principal()
        principal.require_admin("amend agreements")
        _require_intact(self.integrity)
        if not request.event_id:
            raise InvalidArgument("event_id", "is required")
        if not request.HasField("effective_from"):
            raise InvalidArgument("effective_from", "is required")
        await self.executors.read(
            lambda: self.service.visible_agreement(principal, request.agreement_id))
        # Only what the amendment names is stored; the ledger applies it on
        # top of the terms in force before its effective_from (10.18).
        changes = convert.changes_from_proto(request.terms, list(request.update_mask.paths),
                                             "terms")
        effective_from = convert.timestamp_to_micros(request.effective_from, "effective_from")
        result = await self.executors.write(lambda: self.service.amend_agreement(
            principal, request.event_id, request.agreement_id, effective_from, changes))
        return agreements_pb2.AmendAgreementResponse(position=result.position, duplicate=result.duplicate)

    async def GetAgreement(self, request: agreements_pb2.GetAgreementRequest,
                          context: grpc.aio.ServicerContext) -> agreements_pb2.GetAgreementResponse:
        principal = current_principal()
        history = await self.executors.read(
            lambda: self.service.visible_agreement(principal, request.agreement_id))
        return agreements_pb2.GetAgreementResponse(agreement=convert.agreement_to_proto(history))

    async def ListAgreements(self, request: agreements_pb2.ListAgreementsRequest,
                            context: grpc.aio.ServicerContext) -> agreements_pb2.ListAgreementsResponse:
        principal = current_principal()
        size, after = page_size(request.page_size, self.limits), _decode_token(request.page_token)

        def run() -> agreements_pb2.ListAgreementsResponse:
            ids = [i for i in self.service.agreement_ids(principal) if i > after]
            page = ids[:size]
            response = agreements_pb2.ListAgreementsResponse(
                agreements=[convert.agreement_to_proto(h) for i in page
                            if (h := self.service.agreement(i)) is not None])
            if len(ids) > size:
                response.next_page_token = _encode_token(page[-1])
            return response

        return await self.executors.read(run)


def summary_to_proto(summary: IncidentSummary) -> incidents_pb2.Incident:
    return incidents_pb2.Incident(
        incident_id=summary.incident_id, agreement_id=summary.agreement_id,
        service=summary.service, priority=convert.priority_value(summary.priority),  # type: ignore[arg-type]
        status=_STATUS[summary.status],  # type: ignore[arg-type]
        opened_at=convert.micros_to_timestamp(summary.opened_at), custody=summary.custody,
        paused=summary.paused, root_cause=summary.root_cause, last_position=summary.last_position,
    )


class IncidentServicer(incidents_pb2_grpc.IncidentServiceServicer):
    def __init__(self, service: LedgerService, executors: Executors,
                 listing: IncidentListing | None = None, integrity: Integrity | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.service = service
        self.executors = executors
        self.listing = listing or IncidentListing(service)
        self.integrity = integrity
        self.limits = limits

    async def AppendEvents(self, request: incidents_pb2.AppendEventsRequest,
                          context: grpc.aio.ServicerContext) -> incidents_pb2.AppendEventsResponse:
        principal = current_principal()
        if not request.events:
            raise InvalidArgument("events", "at least one event is required")
        _require_intact(self.integrity)
        events = [convert.event_from_proto(m, f"events[{i}]") for i, m in enumerate(request.events)]
        if request.validate_only:  # checks only: a reader is enough
            results = await self.executors.read(lambda: self.service.validate(principal, events))
        else:
            results = await self.executors.append(principal, events)
        return incidents_pb2.AppendEventsResponse(results=[
            incidents_pb2.AppendResult(event_id=r.event_id, position=r.position, duplicate=r.duplicate)
            for r in results])

    async def GetIncident(self, request: incidents_pb2.GetIncidentRequest,
                         context: grpc.aio.ServicerContext) -> incidents_pb2.GetIncidentResponse:
        principal = current_principal()
        events = await self.executors.read(
            lambda: self.service.incident_events(principal, request.incident_id,
                                                 request.agreement_id))
        summary = summarise(events, self.service.agreement(events[0].agreement_id))
        retracted = effective_timeline(events).retracted_ids
        return incidents_pb2.GetIncidentResponse(
            incident=summary_to_proto(summary),
            timeline=[incidents_pb2.TimelineEntry(recorded=convert.recorded_to_proto(e),
                                                  retracted=e.event_id in retracted)
                      for e in sorted(events, key=timeline_key)])

    async def ListIncidents(self, request: incidents_pb2.ListIncidentsRequest,
                           context: grpc.aio.ServicerContext) -> incidents_pb2.ListIncidentsResponse:
        principal = current_principal()
        size, after = page_size(request.page_size, self.limits), _decode_token(request.page_token)
        status = _STATUS_NAMES.get(request.status)
        opened_from = (convert.timestamp_to_micros(request.opened_from, "opened_from")
                       if request.HasField("opened_from") else None)
        opened_to = (convert.timestamp_to_micros(request.opened_to, "opened_to")
                     if request.HasField("opened_to") else None)

        query = IncidentQuery(
            agreement_id=request.agreement_id or None, status=status, custody=request.custody,
            opened_from=opened_from, opened_to=opened_to, after=after, size=size)

        def run() -> incidents_pb2.ListIncidentsResponse:
            page = self.listing.page(principal, query)
            response = incidents_pb2.ListIncidentsResponse(
                incidents=[summary_to_proto(s) for s in page.incidents])
            if page.next_after is not None:
                response.next_page_token = _encode_token(page.next_after)
            return response

        return await self.executors.read(run)


class LogServicer(log_pb2_grpc.LogServiceServicer):
    """ReadLog writes each message itself, with a bound on how long one write
    may wait: a reader that stops reading fills the transport's flow-control
    window (a few MB at most, never an unbounded queue), and once a write has
    waited ``stall_seconds`` the stream ends RESOURCE_EXHAUSTED so it holds
    nothing further. A reader that resumes after that reconnects from its
    last position."""

    def __init__(self, service: LedgerService, executors: Executors, feed: LogFeed,
                 poll_seconds: float = 1.0, stall_seconds: float = 30.0,
                 integrity: Integrity | None = None) -> None:
        self.service = service
        self.reads = LogReads(service, integrity)
        self.executors = executors
        self.feed = feed
        self.poll_seconds = poll_seconds
        self.stall_seconds = stall_seconds

    async def _write(self, context: grpc.aio.ServicerContext,
                     message: log_pb2.ReadLogResponse) -> None:
        try:
            await asyncio.wait_for(context.write(message), self.stall_seconds)
        except TimeoutError:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"the reader took longer than {self.stall_seconds:g} s to accept "
                                "an event; resume with after_position set to the last one received")

    # Written with context.write (each write bounded, see the class), so it
    # returns None where the generated base declares an iterator of responses.
    async def ReadLog(self, request: log_pb2.ReadLogRequest,  # type: ignore[override]
                      context: grpc.aio.ServicerContext) -> None:
        principal = current_principal()
        if request.after_position < 0 or request.to_position < 0:
            raise InvalidArgument("after_position", "positions are not negative")
        if request.agreement_id:
            await self.executors.read(
                lambda: self.service.visible_agreement(principal, request.agreement_id))
        wanted = _log_filter(request, self.service.visible_filter(principal))
        after = request.after_position
        upto = request.to_position or None
        while True:
            batch = await self.executors.read(functools.partial(self.reads.batch, after, upto))
            for event in batch:
                after = event.position
                if wanted(event):
                    await self._write(context, log_pb2.ReadLogResponse(
                        event=convert.recorded_to_proto(event)))
            if len(batch) == BATCH:
                continue
            if not request.follow or (upto is not None and after >= upto):
                return
            if context.cancelled():
                return
            await self.feed.wait_beyond(after, self.poll_seconds)


def _log_filter(request: log_pb2.ReadLogRequest,
                visible: Callable[[LedgerEvent], bool]) -> Callable[[LedgerEvent], bool]:
    """The log entries a ReadLog sends: of the agreement and incident asked
    for (if any), and visible to the caller."""
    def wanted(event: LedgerEvent) -> bool:
        return ((not request.agreement_id or event.agreement_id == request.agreement_id)
                and (not request.incident_id or event.incident_id == request.incident_id)
                and visible(event))
    return wanted


def register_all(server: grpc.aio.Server, service: LedgerService, executors: Executors,
                 feed: LogFeed, listing: IncidentListing | None = None,
                 stall_seconds: float = 30.0, integrity: Integrity | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> list[str]:
    agreements_pb2_grpc.add_AgreementServiceServicer_to_server(
        AgreementServicer(service, executors, integrity, limits), server)
    incidents_pb2_grpc.add_IncidentServiceServicer_to_server(
        IncidentServicer(service, executors, listing, integrity, limits), server)
    log_pb2_grpc.add_LogServiceServicer_to_server(
        LogServicer(service, executors, feed, stall_seconds=stall_seconds, integrity=integrity), server)
    return [
        agreements_pb2.DESCRIPTOR.services_by_name["AgreementService"].full_name,
        incidents_pb2.DESCRIPTOR.services_by_name["IncidentService"].full_name,
        log_pb2.DESCRIPTOR.services_by_name["LogService"].full_name,
    ]
