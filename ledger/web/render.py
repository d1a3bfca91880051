"""Server-side templates (Jinja2, autoescaped) shared by the statement file
and the console."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ledger import formats
from ledger.domain.instants import format_instant
from ledger.web import charts


def static_text(name: str) -> str:
    return resources.files("ledger.web").joinpath("static", name).read_text("utf-8")


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("ledger.web", "templates"),
                      autoescape=select_autoescape(("html",)), trim_blocks=False)
    env.filters["pct"] = formats.pct
    env.filters["money"] = formats.money
    env.filters["duration"] = formats.duration
    env.filters["instant"] = format_instant
    return env


def statement_context(statement: dict[str, Any]) -> dict[str, Any]:
    """What the statement body needs beside the statement itself: colours
    per org and the chart functions bound to them."""
    orgs = [*statement.get("providers", []), statement.get("customer", "")]
    colours = charts.org_colours([o for o in orgs if o])
    report = statement["report"]
    return {
        "st": statement, "colours": {o: colours[o] for o in statement.get("providers", [])},
        "custody_bar": lambda holders, start, elapsed: charts.custody_bar(holders, start, elapsed, colours),
        "timeline": lambda slices, windows: charts.downtime_timeline(
            slices, windows, report["period_start"], report["period_end"], colours),
        "attainment": charts.attainment_chart,
    }


def render_statement_file(statement: dict[str, Any]) -> str:
    """The statement as one self-contained HTML file: styles inline, no
    script, nothing fetched (its Content-Security-Policy forbids it)."""
    template = environment().get_template("statement_file.html")
    return template.render(css=Markup(static_text("console.css")), link_incidents=False, base="",
                           **statement_context(statement))


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
