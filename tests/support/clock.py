"""The tests' clock: settable, in epoch microseconds (the ledger's instant
unit), so no test reads the wall clock."""

from __future__ import annotations

from ledger.domain.instants import parse_instant

FIXED_NOW = "2026-11-05T00:00:00Z"


class FakeClock:
    """A settable clock in epoch microseconds, the ledger's instant unit."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def set(self, instant: str) -> None:
        self.now = parse_instant(instant)

    def advance(self, micros: int) -> None:
        self.now += micros
