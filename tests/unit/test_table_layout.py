"""The command line's one table layout: what it cuts and what it never cuts."""

from __future__ import annotations

import io

import pytest

from ledger.cli.claims import claims_table
from ledger.formats import table

LONG_ID = "575c6c86-9ca6-51a8-84c8-59914a5e2d39"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_output_is_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", io.StringIO())
    text = table([["x" * 150]], ["wide"])
    assert text.splitlines()[-1] == "x" * 150


def test_a_terminal_cuts_the_last_column_to_its_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", FakeTerminal())
    monkeypatch.setenv("COLUMNS", "40")
    last = table([["x" * 150]], ["wide"]).splitlines()[-1]
    assert len(last) == 40
    assert last.endswith("…")


def test_a_claims_event_id_stays_whole_on_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", FakeTerminal())
    monkeypatch.setenv("COLUMNS", "40")
    claim = {"deemed_at": None, "state": "disputed", "incident_id": "INC-1009", "type": "resolved",
             "claim": {"root_cause": "customer"}, "claimed_by": "hp", "awaiting": ["herts"],
             "event_id": LONG_ID}
    assert claims_table([claim]).splitlines()[-1].endswith(LONG_ID)
