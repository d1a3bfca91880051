"""Sanity checks for the Grafana dashboards in ``ops/grafana/dashboards``.

A structural check of the dashboard JSON model (the parts Grafana refuses or
silently breaks on: uid, schemaVersion, grid positions, panel ids, datasource
references, template variables) and a cross-check that every metric an
expression uses is one the ledger exports or a recording rule defines.

    python -m ledger.observability.grafana [--rules RULES.yml ...] DASHBOARD.json ...
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ledger.observability.metrics import LedgerMetrics

MIN_SCHEMA_VERSION = 36
GRID_COLUMNS = 24
PANEL_TYPES = frozenset(
    {
        "timeseries",
        "stat",
        "table",
        "bargauge",
        "gauge",
        "barchart",
        "piechart",
        "heatmap",
        "state-timeline",
        "status-history",
        "histogram",
        "text",
        "row",
    }
)
VARIABLE_TYPES = frozenset(
    {"query", "datasource", "custom", "constant", "interval", "textbox", "adhoc"}
)
_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|([A-Za-z0-9_]+))")

#: Series Prometheus itself provides for every target.
PROMETHEUS_BUILTINS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
        "start",
        "end",
    }
)
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z0-9_]+")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])")
_DURATION = re.compile(r"^\d+(ms|s|m|h|d|w|y)$")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions and keywords excluded)."""
    text = _GRAFANA_VAR.sub("1m", expr)
    text = _STRING.sub('""', text)
    names = {m.group(1) for m in re.finditer(r"__name__\s*=~?\s*\"([^\"]*)\"", expr)}
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        word = match.group(1)
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS or _DURATION.match(word):
            continue
        names.add(word)
    return names


def _panels(panels: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        if isinstance(panel, Mapping):
            yield panel
            yield from _panels(panel.get("panels") or ())


def dashboard_exprs(dashboard: Mapping[str, Any]) -> Iterator[str]:
    for panel in _panels(dashboard.get("panels") or ()):
        for target in panel.get("targets") or ():
            if isinstance(target, Mapping) and isinstance(target.get("expr"), str):
                yield target["expr"]
    for variable in (dashboard.get("templating") or {}).get("list") or ():
        query = variable.get("query") if isinstance(variable, Mapping) else None
        if isinstance(query, Mapping):
            query = query.get("query")
        if isinstance(query, str) and variable.get("type") == "query":
            found = re.search(r"label_values\((.*),\s*[A-Za-z_]\w*\)\s*$", query)
            if found:
                yield found.group(1)
            elif not query.startswith(("label_names(", "metrics(")):
                yield query.removeprefix("query_result(").removesuffix(")")


def _variables_used(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        for match in _VARIABLE.finditer(value):
            yield match.group(1) or match.group(2)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _variables_used(item)
    elif isinstance(value, list):
        for item in value:
            yield from _variables_used(item)


def _check_datasource(where: str, datasource: Any, errors: list[str]) -> None:
    if not isinstance(datasource, Mapping) or not datasource.get("uid"):
        errors.append(f"{where}: datasource must be an object with a uid")
    elif datasource.get("type") not in (None, "prometheus", "grafana", "datasource"):
        errors.append(f"{where}: unexpected datasource type {datasource.get('type')!r}")


def validate_dashboard(dashboard: Any) -> list[str]:
    """Problems with a dashboard JSON model (empty when it is sound)."""
    if not isinstance(dashboard, Mapping):
        return ["the dashboard is not a JSON object"]
    errors = _check_header(dashboard)
    defined = _check_variables(dashboard, errors)
    panels = dashboard.get("panels")
    if not isinstance(panels, list) or not panels:
        errors.append("panels must be a non-empty list")
        panels = []
    ids: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    for panel in _panels(panels):
        errors.extend(_validate_panel(panel, ids, cells))
    for name in sorted(set(_variables_used(dashboard)) - defined):
        errors.append(f"variable ${name} is used but not defined")
    return errors


def _check_header(dashboard: Mapping[str, Any]) -> list[str]:
    """Problems with the dashboard's own fields (uid, title, schema, time, id)."""
    errors: list[str] = []
    uid = dashboard.get("uid")
    if not isinstance(uid, str) or not _UID.match(uid):
        errors.append(f"uid {uid!r}: 1-40 characters of letters, digits, '-' or '_'")
    if not isinstance(dashboard.get("title"), str) or not dashboard["title"].strip():
        errors.append("title is missing")
    version = dashboard.get("schemaVersion")
    if not isinstance(version, int) or version < MIN_SCHEMA_VERSION:
        errors.append(f"schemaVersion {version!r}: must be an integer >= {MIN_SCHEMA_VERSION}")
    time_range = dashboard.get("time")
    if not isinstance(time_range, Mapping) or not {"from", "to"} <= set(time_range):
        errors.append("time must have from and to")
    if "id" in dashboard and dashboard["id"] is not None:
        errors.append("id must be null or absent in a provisioned dashboard (uid identifies it)")
    return errors


def _check_variables(dashboard: Mapping[str, Any], errors: list[str]) -> set[str]:
    """The variable names a query may use (Grafana's built-ins and the
    dashboard's); problems with the dashboard's variables go to `errors`."""
    variables = (dashboard.get("templating") or {}).get("list")
    if not isinstance(variables, list):
        errors.append("templating.list must be a list")
        variables = []
    defined = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s"}
    for variable in variables:
        name = variable.get("name") if isinstance(variable, Mapping) else None
        if not isinstance(name, str) or not name:
            errors.append(f"template variable without a name: {variable!r}")
            continue
        defined.add(name)
        if variable.get("type") not in VARIABLE_TYPES:
            errors.append(f"variable {name}: unknown type {variable.get('type')!r}")
        if variable.get("type") == "query":
            _check_datasource(f"variable {name}", variable.get("datasource"), errors)
    return defined


def _validate_panel(
    panel: Mapping[str, Any], ids: set[int], cells: dict[tuple[int, int], str]
) -> list[str]:
    errors: list[str] = []
    title = panel.get("title")
    where = f"panel {panel.get('id')!r} ({title!r})"
    if not isinstance(title, str) or not title:
        errors.append(f"{where}: title is missing")
    pid = panel.get("id")
    if not isinstance(pid, int) or pid in ids:
        errors.append(f"{where}: id must be a unique integer")
    else:
        ids.add(pid)
    kind = panel.get("type")
    if kind not in PANEL_TYPES:
        errors.append(f"{where}: unknown panel type {kind!r}")
    _check_grid(where, panel.get("gridPos"), cells, errors)
    if kind in ("row", "text"):
        return errors
    _check_datasource(where, panel.get("datasource"), errors)
    targets = panel.get("targets")
    if not isinstance(targets, list) or not targets:
        errors.append(f"{where}: no targets")
        return errors
    _check_targets(where, targets, errors)
    return errors


def _check_grid(where: str, grid: Any, cells: dict[tuple[int, int], str], errors: list[str]) -> None:
    """The panel's place on the 24-column grid, clear of the panels in `cells`."""
    if not isinstance(grid, Mapping) or not all(
        isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")
    ):
        errors.append(f"{where}: gridPos needs integer h, w, x, y")
        return
    h, w, x, y = grid["h"], grid["w"], grid["x"], grid["y"]
    if h < 1 or w < 1 or x < 0 or y < 0 or x + w > GRID_COLUMNS:
        errors.append(f"{where}: gridPos {dict(grid)} is outside the 24-column grid")
        return
    for cx in range(x, x + w):
        for cy in range(y, y + h):
            other = cells.setdefault((cx, cy), where)
            if other != where:
                errors.append(f"{where}: overlaps {other}")
                return


def _check_targets(where: str, targets: list[Any], errors: list[str]) -> None:
    refs: set[str] = set()
    for target in targets:
        if not isinstance(target, Mapping):
            errors.append(f"{where}: target is not an object")
            continue
        ref = target.get("refId")
        if not isinstance(ref, str) or ref in refs:
            errors.append(f"{where}: target refId must be a unique string")
        else:
            refs.add(ref)
        if not isinstance(target.get("expr"), str) or not target["expr"].strip():
            errors.append(f"{where}: target {ref!r} has no expr")
        _check_datasource(f"{where} target {ref!r}", target.get("datasource"), errors)


def recording_rule_names(rule_files: Iterable[Path]) -> set[str]:
    names: set[str] = set()
    for path in rule_files:
        document = yaml.safe_load(path.read_text()) or {}
        for group in document.get("groups") or ():
            names.update(rule["record"] for rule in group.get("rules") or () if "record" in rule)
    return names


def rule_exprs(rule_files: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(rule name, expr) of every recording and alerting rule."""
    for path in rule_files:
        document = yaml.safe_load(path.read_text()) or {}
        for group in document.get("groups") or ():
            for rule in group.get("rules") or ():
                yield rule.get("record") or rule.get("alert"), rule["expr"]


def known_metric_names(rule_files: Iterable[Path] = ()) -> set[str]:
    """What the ledger exports, what Prometheus adds, and what the rules record."""
    return LedgerMetrics().metric_names() | PROMETHEUS_BUILTINS | recording_rule_names(rule_files)


def check_files(dashboards: Sequence[Path], rule_files: Sequence[Path]) -> list[str]:
    known = known_metric_names(rule_files)
    problems: list[str] = []
    for path in dashboards:
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        problems.extend(f"{path}: {error}" for error in validate_dashboard(dashboard))
        for expr in dashboard_exprs(dashboard):
            for name in sorted(metric_names(expr) - known):
                problems.append(f"{path}: unknown metric {name!r} in {expr!r}")
    for rule, expr in rule_exprs(rule_files):
        for name in sorted(metric_names(expr) - known):
            problems.append(f"rule {rule}: unknown metric {name!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rules", action="append", type=Path, default=[], metavar="FILE")
    parser.add_argument("dashboards", nargs="+", type=Path)
    args = parser.parse_args(argv)
    problems = check_files(args.dashboards, args.rules)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{len(args.dashboards)} dashboard(s) OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
