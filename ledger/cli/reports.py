"""`sla-ledger report`, `incident`, `restatement`: reports for people and tools."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from typing import Any

from ledger.domain.instants import parse_instant
from ledger.formats import money as _money
from ledger.formats import pct as _pct


def _cut(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    if re.fullmatch(r"\d+", text):
        return {"as_recorded_position": int(text)}
    return {"as_recorded_instant": parse_instant(text)}


def _evaluated(text: str | None) -> int | None:
    return parse_instant(text) if text else None


def cmd_report(args: argparse.Namespace) -> int:
    from ledger.cli.main import make_client

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

    from ledger.cli.main import make_client
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


def print_report(report: dict[str, Any], form: str) -> None:
    """A period report as `sla-ledger report` prints it (json, csv or table)."""
    if form == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif form == "csv":
        print(report_csv(report), end="")
    else:
        print(report_table(report))


def cmd_incident(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    from ledger.cli.main import make_client

    try:
        evaluated, cut = _evaluated(args.evaluated_at), _cut(args.as_recorded_at)
    except ValueError as exc:
        print(f"sla-ledger incident: {exc}", file=sys.stderr)
        return 2
    with make_client(args) as client:
        if args.format == "timeline":
            response = client.get_incident(args.incident_id)
            print(json.dumps(MessageToDict(response, preserving_proto_field_name=True), indent=2))
            return 0
        position = cut.get("as_recorded_position")
        view = client.incident_sla(args.incident_id, evaluated_at=evaluated,
                                   as_recorded_position=position)
    print(json.dumps(view, indent=2, ensure_ascii=False))
    return 0


def cmd_restatement(args: argparse.Namespace) -> int:
    from ledger.cli.main import make_client
    with make_client(args) as client:
        result = client.restatement(args.agreement, args.period,
                                    evaluated_at=_evaluated(args.evaluated_at),
                                    from_cut=_cut(args.from_cut), to_cut=_cut(args.to_cut))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def report_table(report: dict[str, Any]) -> str:
    """What a service manager reads at month end; fits 100 columns."""
    currency = report["credits_total"]["currency"]
    providers = sorted(report["credits_by_provider"])
    out = [
        f"Agreement {report['agreement']}  period {report['period']}  "
        f"evaluated {report['evaluated_at']}  ledger position {report['recorded_position']}",
        "",
        f"{'service level':<22} {'objective':>9} {'attained':>9} {'ok':>3} "
        f"{'met/missed/pend/exc':>19} {'credit':>18}",
        "-" * 99,
    ]
    for level in report["service_levels"]:
        if level["kind"] == "availability":
            counts = f"down {float(level.get('downtime_seconds', 0)) / 60:,.1f} min"
        else:
            counts = f"{level['met']}/{level['missed']}/{level['pending']}/{level['excused']}"
        out.append(
            f"{level['id']:<22} {_pct(level['objective']):>9} {_pct(level.get('attainment')):>9} "
            f"{'yes' if level['achieved'] else 'NO':>3} {counts:>19} "
            f"{_money(level['credit']['minor_units'], currency):>18}"
        )
        if level.get("shares"):
            shares = ", ".join(f"{p} {_pct(s)}" for p, s in sorted(level["shares"].items()))
            split = ", ".join(f"{p} {_money(v, currency)}" for p, v in sorted(level["credit_split"].items()))
            out.append(f"{'':<4}shares: {shares}")
            if int(level["credit"]["minor_units"]):
                out.append(f"{'':<4}credit split: {split}")
    out.append("-" * 99)
    uncapped = report.get("credits_uncapped", report["credits_total"])
    out.append(f"{'credits before cap':<40} {_money(uncapped['minor_units'], currency):>58}")
    out.append(f"{'cap (at risk)':<40} {_money(report['credit_cap']['minor_units'], currency):>58}")
    out.append(f"{'credits due':<40} {_money(report['credits_total']['minor_units'], currency):>58}")
    for provider in providers:
        out.append(f"{'  owed by ' + provider:<40} "
                   f"{_money(report['credits_by_provider'][provider], currency):>58}")
    return "\n".join(out)


def report_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    providers = sorted(report["credits_by_provider"])
    writer = csv.writer(buffer)
    writer.writerow(["agreement", "period", "service_level", "kind", "objective", "attainment",
                     "achieved", "met", "missed", "pending", "excused", "credit_minor_units",
                     *[f"credit_{p}" for p in providers], *[f"share_{p}" for p in providers]])
    for level in report["service_levels"]:
        writer.writerow([report["agreement"], report["period"], level["id"], level["kind"],
                         level["objective"], level.get("attainment") or "", level["achieved"],
                         level.get("met", ""), level.get("missed", ""), level.get("pending", ""),
                         level.get("excused", ""), level["credit"]["minor_units"],
                         *[level["credit_split"].get(p, 0) for p in providers],
                         *[level.get("shares", {}).get(p, "") for p in providers]])
    return buffer.getvalue()
