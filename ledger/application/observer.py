"""The write path's observer port.

Metrics, the log feed and the projections learn what the ledger did through
these hooks, handed to the services by the composition root
(`ledger.server.bootstrap`), never by replacing methods on built objects. Every
hook is called after the fact, from the thread that did the work; it must be
quick and must not raise (an exception is logged and otherwise ignored).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ledger.domain.errors import DomainError
from ledger.domain.events import AppendResult, LedgerEvent

log = logging.getLogger(__name__)


class LedgerObserver:
    """Override what you need; every hook does nothing here."""

    def appended(self, events: Sequence[LedgerEvent], results: Sequence[AppendResult],
                 seconds: float) -> None:
        """An AppendEvents call was answered with its results (new or duplicate)."""

    def rejected(self, events: Sequence[LedgerEvent], error: DomainError,
                 seconds: float) -> None:
        """An AppendEvents call was refused (nothing of it stored)."""

    def stored(self, events: Sequence[LedgerEvent]) -> None:
        """Events were committed to the log (position order, positions set)."""

    def projected(self, name: str, position: int, recorded_at: int, count: int,
                  seconds: float) -> None:
        """A projection committed a batch up to `position`."""

    def checkpoint_signed(self, checkpoint: Any) -> None:
        """The audit log signed a new checkpoint."""


class Observers(LedgerObserver):
    """Fans every hook out to several observers, in order."""

    def __init__(self, observers: Sequence[LedgerObserver] = ()) -> None:
        self.observers = list(observers)

    def _each(self, hook: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, hook)(*args)
            except Exception:  # an observer must never fail the write it observes
                log.exception("observer %r failed in %s", observer, hook)

    def appended(self, events: Sequence[LedgerEvent], results: Sequence[AppendResult],
                 seconds: float) -> None:
        self._each("appended", events, results, seconds)

    def rejected(self, events: Sequence[LedgerEvent], error: DomainError,
                 seconds: float) -> None:
        self._each("rejected", events, error, seconds)

    def stored(self, events: Sequence[LedgerEvent]) -> None:
        self._each("stored", events)

    def projected(self, name: str, position: int, recorded_at: int, count: int,
                  seconds: float) -> None:
        self._each("projected", name, position, recorded_at, count, seconds)

    def checkpoint_signed(self, checkpoint: Any) -> None:
        self._each("checkpoint_signed", checkpoint)
