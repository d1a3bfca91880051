"""The incident view's JSON is a user contract (`sla-ledger incident
--format json`, GetIncidentSla's `incident_json`): the typed view read back
from it renders the same bytes again, for every shape (in force, voided,
not yet existing, a clock still running)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.sla.incident_json import incident_view_dict, incident_view_from_dict

EXPECTED = Path(__file__).resolve().parents[1] / "data" / "herts-2026-10.expected.json"
INCIDENTS: dict[str, dict[str, Any]] = json.loads(EXPECTED.read_text(encoding="utf-8"))["incidents"]
NOT_YET = {"incident_id": "INC-2001", "agreement": "herts-converged",
           "evaluated_at": "2026-10-01T00:00:00Z", "recorded_position": 7, "exists": False,
           "service_levels": {}}


def _running(view: dict[str, Any]) -> dict[str, Any]:
    """The view with its first clock still running (a due instant, no outcome yet)."""
    levels = dict(view["service_levels"])
    first = next(iter(levels))
    levels[first] = levels[first] | {"due_at": "2026-10-24T22:35:00.500000Z",
                                     "outcome": "pending", "stopped": False, "shares": {}}
    return view | {"service_levels": levels}


@pytest.mark.parametrize("view", [*INCIDENTS.values(), NOT_YET, _running(INCIDENTS["INC-1003"])],
                         ids=[*INCIDENTS, "not-yet", "running"])
def test_the_typed_view_renders_its_json_byte_for_byte(view: dict[str, Any]) -> None:
    typed = incident_view_from_dict(view)
    again = incident_view_dict(typed)
    assert json.dumps(again, ensure_ascii=False, separators=(",", ":")) == \
        json.dumps(view, ensure_ascii=False, separators=(",", ":"))
    assert incident_view_from_dict(again) == typed
