"""`sla-ledger report`, `incident`, `restatement`: reports for people and tools."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from typing import Any

from ledger.cli.common import make_client
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.clocks import OUTCOMES
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.render import fmt_instant, fmt_ratio, fmt_seconds
from ledger.domain.sla.report import PeriodReport, period_status
from ledger.domain.sla.report_json import as_recorded_at, period_report_dict
from ledger.formats import money as _money
from ledger.formats import pct as _pct
from ledger.formats import table


def _cut(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if re.fullmatch(r"\d+", text):
        return {"as_recorded_position": int(text)}
    return {"as_recorded_instant": parse_instant(text)}


def _evaluated(text: str | None) -> int | None:
    return parse_instant(text) if text else None


def cmd_report(args: argparse.Namespace) -> int:
    try:
        evaluated, cut = _evaluated(args.evaluated_at), _cut(args.as_recorded_at)
    except ValueError as exc:
        print(f"sla-ledger report: {exc}", file=sys.stderr)
        return 2
    with make_client(args) as client:
        report = client.period_report(args.agreement, args.period, evaluated_at=evaluated, **cut)
    print_report(report, args.format)
    return 0


def cmd_statement(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ledger.web.render import render_statement_file

    try:
        evaluated, cut = _evaluated(args.evaluated_at), _cut(args.as_recorded_at)
    except ValueError as exc:
        print(f"sla-ledger statement: {exc}", file=sys.stderr)
        return 2
    with make_client(args) as client:
        statement = client.statement(args.agreement, args.period, evaluated_at=evaluated, **cut)
    page = render_statement_file(statement)
    if args.out == "-":
        sys.stdout.write(page)
    else:
        Path(args.out).write_text(page, "utf-8")
        print(f"{args.out}: statement of {args.agreement} {args.period} at ledger position "
              f"{statement['report']['recorded_position']}", file=sys.stderr)
    return 0


def print_report(report: PeriodReport, form: str) -> None:
    """A period report as `sla-ledger report` prints it (json, csv or table)."""
    if form == "json":
        print(json.dumps(period_report_dict(report), indent=2, ensure_ascii=False))
    elif form == "csv":
        print(report_csv(report), end="")
    else:
        print(report_table(report))


def cmd_incident(args: argparse.Namespace) -> int:
    try:
        evaluated, cut = _evaluated(args.evaluated_at), _cut(args.as_recorded_at)
    except ValueError as exc:
        print(f"sla-ledger incident: {exc}", file=sys.stderr)
        return 2
    with make_client(args) as client:
        if args.format == "timeline":
            from ledger.cli.listing import timeline_dict

            print(json.dumps(timeline_dict(client.get_incident(args.incident_id, args.agreement or "")), indent=2,
                             ensure_ascii=False))
            return 0
        position = cut.get("as_recorded_position")
        view = client.incident_sla(args.incident_id, agreement_id=args.agreement or "",
                                   evaluated_at=evaluated,
                                   as_recorded_position=position)
    print(json.dumps(incident_view_dict(view), indent=2, ensure_ascii=False))
    return 0


def cmd_restatement(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        result = client.restatement(args.agreement, args.period,
                                    evaluated_at=_evaluated(args.evaluated_at),
                                    from_cut=_cut(args.from_cut), to_cut=_cut(args.to_cut))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def report_table(report: PeriodReport, width: int | None = None) -> str:
    """What a service manager reads at month end: fits the terminal (at
    least 80 columns) and names the incidents that breached each level."""
    import shutil
    import textwrap

    from ledger.formats import duration

    width = max(80, min(width or shutil.get_terminal_size((100, 24)).columns, 120))
    currency = report.currency
    status = period_status(report)
    evaluated = format_instant(report.evaluated_at)
    asked = as_recorded_at(report)
    name = max(22, *(len(lv.id) for lv in report.service_levels))
    money = width - name - 41
    out = [f"Agreement {report.agreement}  period {report.period} ({status})",
           f"evaluated {evaluated}  ledger position {report.recorded_position}"
           + (f"  as recorded at {asked}" if asked is not None else "")]
    if status == "not started":
        out.append(f"The period had not started at {evaluated}: nothing is measured yet, "
                   "so no level is achieved or missed.")
    elif status == "in progress":
        out.append("The period is still running: these figures are provisional.")
    out += ["", f"{'service level':<{name}} {'objective':>9} {'attained':>9} {'ok':>3} "
                f"{'met/mis/pnd/exc':>15} {'credit':>{money}}", "-" * width]
    for level in report.service_levels:
        if level.is_availability:
            counts = f"down {duration(fmt_seconds(level.downtime))}"
        else:
            counts = "/".join(str(level.counts[o]) for o in OUTCOMES)
        ok = "-" if status == "not started" else ("yes" if level.achieved else "NO")
        out.append(f"{level.id:<{name}} {_pct(level.objective):>9} {_pct(level.attainment):>9} "
                   f"{ok:>3} {counts:>15} {_money(level.credit.minor_units, currency):>{money}}")
        breached = (level.incidents or {}).get("missed") or ()
        if breached:
            out += textwrap.wrap("breached: " + ", ".join(breached), width, initial_indent="    ",
                                 subsequent_indent="              ")
        if level.shares and level.credit.minor_units:
            split = ", ".join(f"{p} {_pct(level.shares.get(p))} = {_money(v, currency)}"
                              for p, v in sorted(level.credit_split.items()))
            out += textwrap.wrap("split: " + split, width, initial_indent="    ",
                                 subsequent_indent="           ")
    out.append("-" * width)
    label = width - money - 1
    out.append(f"{'credits before cap':<{label}} "
               f"{_money(report.credits_uncapped.minor_units, currency):>{money}}")
    out.append(f"{'cap (at risk)':<{label}} {_money(report.credit_cap.minor_units, currency):>{money}}")
    out.append(f"{'credits due':<{label}} {_money(report.credits_total.minor_units, currency):>{money}}")
    for provider in sorted(report.credits_by_provider):
        out.append(f"{'  owed by ' + provider:<{label}} "
                   f"{_money(report.credits_by_provider[provider], currency):>{money}}")
    if report.disputes:
        out += ["", "Claims not in effect, not counted above (sla-semantics 11.7):", table(
            [[d.incident_id, d.type, d.claimed_by, ",".join(d.awaiting), d.state,
              fmt_instant(d.deemed_at) or "-"] for d in report.disputes],
            ["incident", "type", "by", "awaiting", "state", "deemed at"], width)]
    return "\n".join(out)


CSV_COLUMNS = ["record", "agreement", "period", "evaluated_at", "recorded_position", "service_level",
               "kind", "objective", "attainment", "achieved", "met", "missed", "pending", "excused",
               "provider", "share", "currency", "credit_uncapped_minor_units", "credit_minor_units",
               "incident_id", "event_id", "claim_type", "claimed_by", "awaiting", "state",
               "deemed_at"]


def report_csv(report: PeriodReport) -> str:
    """Long format, one figure set a row: `level` rows, a `level_provider`
    row per level and provider (share and split), the `credits_before_cap`,
    `cap` and `credits_due` totals, a `provider_total` row per provider and a
    `dispute` row per claim not in effect."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, restval="")
    writer.writeheader()
    head = {"agreement": report.agreement, "period": report.period,
            "evaluated_at": format_instant(report.evaluated_at),
            "recorded_position": report.recorded_position, "currency": report.currency}
    providers = sorted(report.credits_by_provider)
    for level in report.service_levels:
        row = {**head, "record": "level", "service_level": level.id, "kind": level.kind,
               "objective": str(level.objective),
               "attainment": "" if level.attainment is None else fmt_ratio(level.attainment),
               "achieved": str(level.achieved).lower(),
               "credit_uncapped_minor_units": level.credit_uncapped.minor_units,
               "credit_minor_units": level.credit.minor_units}
        if not level.is_availability:
            row |= {outcome: level.counts[outcome] for outcome in OUTCOMES}
        writer.writerow(row)
        for provider in providers:
            share = level.shares.get(provider)
            writer.writerow({**head, "record": "level_provider", "service_level": level.id,
                             "kind": level.kind, "provider": provider,
                             "share": "" if share is None else fmt_ratio(share),
                             "credit_minor_units": level.credit_split.get(provider, 0)})
    writer.writerow({**head, "record": "credits_before_cap",
                     "credit_minor_units": report.credits_uncapped.minor_units})
    writer.writerow({**head, "record": "cap", "credit_minor_units": report.credit_cap.minor_units})
    writer.writerow({**head, "record": "credits_due",
                     "credit_minor_units": report.credits_total.minor_units})
    for provider in providers:
        writer.writerow({**head, "record": "provider_total", "provider": provider,
                         "credit_minor_units": report.credits_by_provider[provider]})
    # Claims not in effect (sla-semantics 11.7): not counted in any row above.
    for d in report.disputes:
        writer.writerow({**head, "record": "dispute", "incident_id": d.incident_id,
                         "event_id": d.event_id, "claim_type": d.type,
                         "claimed_by": d.claimed_by, "awaiting": " ".join(d.awaiting),
                         "state": d.state, "deemed_at": fmt_instant(d.deemed_at) or ""})
    return buffer.getvalue()
