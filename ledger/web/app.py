"""The read-only web console: server-side pages over the application
services the gRPC servicers use, with the same principals and visibility.

Callers authenticate as over gRPC: `Authorization: Bearer <token>`, or the
same token given once on /login and kept in an HttpOnly cookie (a browser
cannot add headers to a link). Without a principals file the console serves
loopback only and every caller is the local admin, exactly like the gRPC
server. Nothing here writes to the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ledger.adapters.principals_file import PrincipalDirectory
from ledger.application.incident_list import IncidentListing, IncidentQuery
from ledger.application.ledger_service import LedgerService
from ledger.application.reports import Cut, ReportService
from ledger.application.statements import StatementService
from ledger.domain.access import LOCAL_ADMIN, Principal
from ledger.domain.errors import DomainError, InvalidArgument, NotFound, OutOfRange
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.period import period_of, shift_period
from ledger.domain.sla.report_json import clock_at_risk_dict, period_report_dict
from ledger.web import charts, render
from ledger.web.incident_page import incident_timeline
from ledger.web.render import render_statement_file, statement_context

COOKIE = "sla_ledger_token"
PERIODS_OFFERED = 12


@dataclass
class ConsoleServices:
    ledger: LedgerService
    reports: ReportService
    statements: StatementService
    listing: IncidentListing
    run: Callable[[Callable[[], Any]], Awaitable[Any]]  # off the event loop (reader pool)
    clock: Callable[[], int]


class Unauthenticated(Exception):
    pass


def _principal(directory: PrincipalDirectory | None, request: Request) -> Principal:
    if directory is None:
        return LOCAL_ADMIN
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if header and scheme.lower() != "bearer":
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    token = token.strip() or request.cookies.get(COOKIE, "")
    principal = directory.by_token(token) if token else None
    if principal is None:
        raise Unauthenticated("a valid token is required")
    return principal


def _instant(text: str | None, field: str) -> int | None:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        raise InvalidArgument(field, f"is not an RFC 3339 instant: {text!r}") from None


def _cut(text: str | None) -> Cut | None:
    if not text:
        return None
    if re.fullmatch(r"\d+", text.strip()):
        return Cut(position=int(text))
    return Cut(recorded_at=_instant(text.strip(), "as_recorded_at"))


def build_app(services: ConsoleServices, directory: PrincipalDirectory | None) -> Starlette:  # noqa: C901, PLR0915  a dozen small handlers closing over the services: the count is theirs summed
    s = services

    def page(handler: Callable[[Request, Principal], Awaitable[Response]],
             ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                principal = _principal(directory, request)
            except Unauthenticated as exc:
                if request.url.path.startswith("/api/"):
                    return JSONResponse({"error": str(exc)}, status_code=401)
                return HTMLResponse(render.render("login.html", principal=None, error=str(exc),
                                                  next=request.url.path), status_code=401)
            try:
                return await handler(request, principal)
            except NotFound as exc:
                return _error(request, principal, 404, str(exc))
            except (InvalidArgument, OutOfRange) as exc:
                return _error(request, principal, 400, str(exc))
            except DomainError as exc:
                return _error(request, principal, 409, str(exc))
        return endpoint

    def _error(request: Request, principal: Principal, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return HTMLResponse(render.render("error.html", principal=principal, status=status,
                                          message=message), status_code=status)

    async def agreements(request: Request, principal: Principal) -> Response:
        def run() -> list[dict[str, Any]]:
            now = s.clock()
            rows = []
            for agreement_id in s.ledger.agreement_ids(principal):
                history = s.ledger.agreement(agreement_id)
                if history is None:
                    continue
                terms = history.current
                rows.append({"id": agreement_id, "customer": terms.customer,
                             "providers": terms.providers, "timezone": terms.timezone,
                             "period": period_of(terms.timezone, now),
                             "levels": len(terms.service_levels)})
            return rows
        return HTMLResponse(render.render("agreements.html", principal=principal,
                                          agreements=await s.run(run)))

    async def agreement(request: Request, principal: Principal) -> Response:
        agreement_id = request.path_params["agreement"]
        history = await s.run(lambda: s.ledger.visible_agreement(principal, agreement_id))
        period = period_of(history.current.timezone, s.clock())
        return RedirectResponse(f"/agreements/{quote(agreement_id)}/{period}", status_code=303)

    def _question(request: Request) -> tuple[str, str, int | None, Cut | None, dict[str, str]]:
        q = request.query_params
        raw = {"evaluated_at": q.get("evaluated_at", "").strip(),
               "as_recorded_at": q.get("as_recorded_at", "").strip()}
        return (request.path_params["agreement"], request.path_params["period"],
                _instant(raw["evaluated_at"], "evaluated_at"), _cut(raw["as_recorded_at"]), raw)

    async def period_page(request: Request, principal: Principal) -> Response:
        agreement_id, period, evaluated, cut, raw = _question(request)
        picked = request.query_params.get("period", "").strip()
        if picked and picked != period:  # the period picker, without script
            query = "&".join(f"{k}={quote(v)}" for k, v in raw.items() if v)
            return RedirectResponse(f"/agreements/{quote(agreement_id)}/{quote(picked)}"
                                    + (f"?{query}" if query else ""), status_code=303)
        statement = await s.run(lambda: s.statements.statement(
            principal, agreement_id, period, evaluated, cut))
        latest = period_of("UTC", s.clock())
        periods = sorted({shift_period(latest, -i) for i in range(PERIODS_OFFERED)} | {period},
                         reverse=True)
        query = "&".join(f"{k}={quote(v)}" for k, v in raw.items() if v)
        return HTMLResponse(render.render(
            "period.html", principal=principal, periods=periods, raw=raw, query=query,
            link_incidents=True, base="", **statement_context(statement)))

    async def statement_file(request: Request, principal: Principal) -> Response:
        agreement_id, period, evaluated, cut, _ = _question(request)
        statement = await s.run(lambda: s.statements.statement(
            principal, agreement_id, period, evaluated, cut))
        name = f"statement-{agreement_id}-{period}.html"
        return HTMLResponse(render_statement_file(statement),
                            headers={"content-disposition": f'attachment; filename="{name}"'})

    async def report_json(request: Request, principal: Principal) -> Response:
        agreement_id, period, evaluated, cut, _ = _question(request)
        report = await s.run(lambda: s.reports.period_report(
            principal, agreement_id, period, evaluated, cut))
        return JSONResponse(period_report_dict(report))

    async def incident(request: Request, principal: Principal) -> Response:
        incident_id = request.path_params["incident"]
        q = request.query_params
        evaluated = _instant(q.get("evaluated_at", "").strip(), "evaluated_at")

        def run() -> dict[str, Any]:
            events = s.ledger.incident_events(principal, incident_id)
            view = s.reports.incident_view(principal, incident_id, evaluated, None)
            # The page shows the figures as the JSON contract writes them.
            return {"view": incident_view_dict(view), "timeline": incident_timeline(events)}
        found = await s.run(run)
        view = found["view"]
        colours = charts.org_colours([h["org"] for h in view.get("holders", [])])
        elapsed = max((c["elapsed_seconds"] for c in (view.get("service_levels") or {}).values()),
                      key=Decimal, default="0")
        return HTMLResponse(render.render(
            "incident.html", principal=principal, evaluated_raw=q.get("evaluated_at", ""),
            custody_elapsed=elapsed,
            custody_bar=lambda h, start, el: charts.custody_bar(h, start, el, colours), **found))

    def _at_risk(principal: Principal, agreement_id: str | None) -> dict[str, Any]:
        now = s.clock()
        clocks = s.reports.clocks_at_risk(principal, agreement_id, now)
        return {"evaluated_at": format_instant(now),
                "clocks": [clock_at_risk_dict(c) for c in clocks]}

    async def at_risk(request: Request, principal: Principal) -> Response:
        agreement_id = request.query_params.get("agreement") or None
        data = await s.run(lambda: _at_risk(principal, agreement_id))
        return HTMLResponse(render.render("at_risk.html", principal=principal,
                                          agreement=agreement_id or "", **data))

    async def at_risk_json(request: Request, principal: Principal) -> Response:
        agreement_id = request.query_params.get("agreement") or None
        return JSONResponse(await s.run(lambda: _at_risk(principal, agreement_id)))

    async def incidents(request: Request, principal: Principal) -> Response:
        agreement_id = request.path_params["agreement"]
        status = request.query_params.get("status") or None

        def run() -> list[Any]:
            s.ledger.visible_agreement(principal, agreement_id)
            page = s.listing.page(principal, IncidentQuery(agreement_id=agreement_id, status=status,
                                                           size=1000))
            return list(page.incidents)
        return HTMLResponse(render.render("incidents.html", principal=principal,
                                          agreement=agreement_id, status=status or "",
                                          incidents=await s.run(run)))

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return HTMLResponse(render.render("login.html", principal=None, error="", next="/"))
        # One urlencoded form of two fields: parsed here rather than
        # pulling in a multipart parser.
        form = parse_qs((await request.body())[:8192].decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        target = (form.get("next") or ["/"])[0]
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if directory is not None and directory.by_token(token) is None:
            return HTMLResponse(render.render("login.html", principal=None, next=target,
                                              error="unknown token"), status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "serving"})

    routes = [
        Route("/", page(agreements)),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST", "GET"]),
        Route("/healthz", health),
        Route("/at-risk", page(at_risk)),
        Route("/api/at-risk", page(at_risk_json)),
        Route("/agreements/{agreement}", page(agreement)),
        Route("/agreements/{agreement}/incidents", page(incidents)),
        Route("/agreements/{agreement}/{period}", page(period_page)),
        Route("/agreements/{agreement}/{period}/statement.html", page(statement_file)),
        Route("/api/agreements/{agreement}/{period}/report.json", page(report_json)),
        Route("/incidents/{incident}", page(incident)),
        Mount("/static", StaticFiles(packages=[("ledger.web", "static")]), name="static"),
    ]
    return Starlette(routes=routes)
