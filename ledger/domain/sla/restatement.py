"""What moved between two renderings of one period report (spec 9): every
figure that changed, with its delta where it is a number, and the incidents
that changed outcome."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

_NOT_FIGURES = ("recorded_position", "as_recorded_at", "incidents", "maintenance_windows")
OUTCOMES = ("met", "missed", "pending", "excused")


def _moved(before: Any, after: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            if key in _NOT_FIGURES:
                continue
            _moved(before.get(key), after.get(key), f"{path}.{key}" if path else key, out)
        return
    if before == after:
        return
    change: dict[str, Any] = {"field": path, "before": before, "after": after}
    # Not numeric (booleans, maps): before/after say it all.
    with contextlib.suppress(ArithmeticError, ValueError, TypeError):
        change["delta"] = str(Decimal(str(after)) - Decimal(str(before)))
    out.append(change)


def report_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    by_id_before = {sl["id"]: sl for sl in before["service_levels"]}
    for level in after["service_levels"]:
        old_level = by_id_before.get(level["id"], {})
        _moved(old_level, level, f"service_levels.{level['id']}", changes)
        for outcome in OUTCOMES:
            old = set(old_level.get("incidents", {}).get(outcome, []))
            new = set(level.get("incidents", {}).get(outcome, []))
            field = f"service_levels.{level['id']}.incidents.{outcome}"
            changes += [{"field": field, "added": i} for i in sorted(new - old)]
            changes += [{"field": field, "removed": i} for i in sorted(old - new)]
    for key in ("credits_total", "credits_uncapped", "credit_cap", "credits_by_provider"):
        _moved(before.get(key), after.get(key), key, changes)
    changes += _disputes_moved(before.get("disputes") or [], after.get("disputes") or [])
    return changes


def _disputes_moved(before: list[dict[str, Any]], after: list[dict[str, Any]],
                    ) -> list[dict[str, Any]]:
    """Claims that came into or went out of the `disputes` list (a claim
    accepted, deemed accepted or newly made), and those whose entry changed."""
    old = {d["event_id"]: d for d in before}
    new = {d["event_id"]: d for d in after}
    out: list[dict[str, Any]] = []
    for event_id in sorted(old.keys() | new.keys()):
        was, now = old.get(event_id), new.get(event_id)
        if was is None and now is not None:
            out.append({"field": "disputes", "added": event_id, "incident_id": now["incident_id"]})
        elif now is None and was is not None:
            out.append({"field": "disputes", "removed": event_id,
                        "incident_id": was["incident_id"]})
        elif was is not None and now is not None:
            _moved(was, now, f"disputes.{event_id}", out)
    return out
