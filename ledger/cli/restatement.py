"""What changed in a period report between two knowledge cuts (spec 9)."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from ledger.client import LedgerClient
from ledger.domain.codec import event_to_dict


def _moved(before: Any, after: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            if key in ("recorded_position", "as_recorded_at", "incidents", "maintenance_windows"):
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


def restatement(client: LedgerClient, agreement: str, period: str, evaluated_at: int | None,
                from_cut: dict[str, int], to_cut: dict[str, int]) -> dict[str, Any]:
    before = client.period_report(agreement, period, evaluated_at=evaluated_at, **from_cut)
    after = client.period_report(agreement, period, evaluated_at=evaluated_at, **to_cut)
    evaluated = after["evaluated_at"]
    if evaluated_at is None and before["evaluated_at"] != evaluated:
        # Compare like with like: both cuts at the same evaluation instant.
        from ledger.domain.instants import parse_instant

        before = client.period_report(agreement, period, evaluated_at=parse_instant(evaluated), **from_cut)
    arrived = [
        event_to_dict(event)
        for _, event in client.read_log(before["recorded_position"], agreement_id=agreement,
                                        to_position=after["recorded_position"])
    ]
    changes: list[dict[str, Any]] = []
    by_id_before = {sl["id"]: sl for sl in before["service_levels"]}
    for level in after["service_levels"]:
        _moved(by_id_before.get(level["id"], {}), level, f"service_levels.{level['id']}", changes)
        for outcome in ("met", "missed", "pending", "excused"):
            old = set(by_id_before.get(level["id"], {}).get("incidents", {}).get(outcome, []))
            new = set(level.get("incidents", {}).get(outcome, []))
            for incident in sorted(new - old):
                changes.append({"field": f"service_levels.{level['id']}.incidents.{outcome}",
                                "added": incident})
            for incident in sorted(old - new):
                changes.append({"field": f"service_levels.{level['id']}.incidents.{outcome}",
                                "removed": incident})
    for key in ("credits_total", "credits_uncapped", "credit_cap", "credits_by_provider"):
        _moved(before.get(key), after.get(key), key, changes)
    return {
        "agreement": agreement, "period": period, "evaluated_at": evaluated,
        "from_position": before["recorded_position"], "to_position": after["recorded_position"],
        "events": arrived, "changes": changes,
    }
