"""Every figure a statement shows, checked against the JSON answers of the
public API for the same question (report, incident clocks, checkpoint).

A statement marks each figure with data-figure (where it comes from) and
data-value (the exact value); the text a person reads must be that value as
ledger.formats renders it. Used by the file test and the browser test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from typing import Any

from ledger import formats


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[list[Any]] = []  # [path, value, text]
        self.open: list[tuple[str, int | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        index = None
        if "data-figure" in attributes:
            index = len(self.found)
            self.found.append([attributes["data-figure"], attributes.get("data-value"), ""])
        if tag not in ("br", "input", "meta", "link", "img", "rect", "line"):
            self.open.append((tag, index))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            name, _ = self.open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, index in self.open:
            if index is not None:
                self.found[index][2] += data


def figures_in_html(html: str) -> list[tuple[str, str | None, str]]:
    parser = _Figures()
    parser.feed(html)
    return [(p, v, " ".join(t.split())) for p, v, t in parser.found]


def _level(report: dict[str, Any], level_id: str) -> dict[str, Any]:
    return next(lv for lv in report["service_levels"] if lv["id"] == level_id)


def _dig(value: Any, keys: Iterable[str]) -> Any:
    for key in keys:
        value = value[key]
    return value


def expected_figure(path: str, report: dict[str, Any], statement: dict[str, Any],  # noqa: C901, PLR0911, PLR0912  one case per kind of statement figure: the test's oracle, read as a table
                    incident_sla: Callable[[str], dict[str, Any]]) -> tuple[str, Callable[[str], bool]]:
    """(exact value as the page must carry it, check of the displayed text)."""
    cur = report["credits_total"]["currency"]
    parts = path.split(".")
    head = parts[0]
    if head == "service_levels":
        level = _level(report, parts[1])
        field = parts[2]
        value = _dig(level, parts[2:]) if parts[2] != "shares" and parts[2] != "credit_split" \
            else level[parts[2]].get(parts[3], "" if parts[2] == "shares" else 0)
        if field in ("objective", "attainment"):
            return ("" if value is None else str(value)), lambda t, v=value: t == formats.pct(v)
        if field == "achieved":
            text = "yes" if value else "NO"
            return str(value).lower(), lambda t: t in (text, "not started")
        if field in ("met", "missed", "pending", "excused"):
            return str(value), lambda t, v=value: t == str(v)
        if field in ("downtime_seconds", "scheduled_seconds"):
            return value, lambda t, v=value: t == formats.duration(v)
        if field == "downtime_by_provider_seconds":
            return value, lambda t, v=value, o=parts[3]: t == f"{o} {formats.duration(v)}"
        if field in ("credit", "credit_uncapped", "credit_split"):
            return str(value), lambda t, v=value: t == formats.money(v, cur)
        if field == "shares":
            return str(value), lambda t, v=value: t == (formats.pct(v) if v else "")
        raise AssertionError(f"unexpected figure {path}")
    if head in ("credits_total", "credits_uncapped", "credit_cap"):
        value = report[head]["minor_units"]
        return str(value), lambda t, v=value: t == formats.money(v, cur)
    if head == "credits_by_provider":
        value = report[head].get(parts[1], 0)
        return str(value), lambda t, v=value: t == formats.money(v, cur)
    if head in ("recorded_position", "evaluated_at"):
        return str(report[head]), lambda t, v=report[head]: t == str(v)
    if head == "footer":
        return str(report["recorded_position"]), lambda t: t == str(report["recorded_position"])
    if head == "status":
        return statement["status"], lambda t: t == statement["status"]
    if head == "missed":
        incident, level_id, field = parts[1], parts[2], parts[3]
        clock = incident_sla(incident)["service_levels"][level_id]
        assert clock["outcome"] == "missed", path
        if field == "elapsed_seconds":
            return clock[field], lambda t, v=clock[field]: t == formats.duration(v)
        value = clock["shares"][parts[4]]
        return value, lambda t, v=value, o=parts[4]: t == f"{o} {formats.pct(v)}"
    if head == "disputes":
        item = report["disputes"][int(parts[1])][parts[2]]
        shown = item if isinstance(item, str) else json.dumps(item)
        return shown, lambda t, v=shown: t == v
    if head == "checkpoint":
        value = statement["checkpoint"][parts[1]]
        return str(value), lambda t, v=value: t == str(v)
    raise AssertionError(f"unexpected figure {path}")


def check_figures(figures: list[tuple[str, str | None, str]], report: dict[str, Any],
                  statement: dict[str, Any], incident_sla: Callable[[str], dict[str, Any]]) -> int:
    """Asserts every figure; returns how many were checked."""
    problems = []
    for path, value, text in figures:
        expected, text_ok = expected_figure(path, report, statement, incident_sla)
        if value is not None and value != expected:
            problems.append(f"{path}: data-value {value!r} != {expected!r}")
        if not text_ok(text):
            problems.append(f"{path}: shows {text!r} for {expected!r}")
    assert not problems, "\n".join(problems)
    return len(figures)
