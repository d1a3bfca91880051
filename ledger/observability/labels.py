"""Bounded label values: what keeps a metric's series count finite whatever the input."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

#: Label value for anything not allowed into a bounded label.
OTHER = "other"
UNKNOWN = "unknown"

_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class BoundedLabel:
    """Maps arbitrary input to a bounded set of label values.

    Values in ``allowed`` pass; otherwise a value must look like an identifier
    and at most ``max_values`` distinct ones are admitted, after which (and for
    anything malformed) the value is ``overflow``.
    """

    def __init__(
        self,
        allowed: Iterable[str] = (),
        *,
        max_values: int = 64,
        overflow: str = OTHER,
        closed: bool = False,
    ) -> None:
        self._allowed = frozenset(allowed)
        self._seen: set[str] = set()
        self._max = max_values
        self._overflow = overflow
        self._closed = closed
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._allowed:
            return value
        if self._closed or not _IDENT.match(value):
            return self._overflow
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._max:
                return self._overflow
            self._seen.add(value)
            return value


def rejection_reason(reason: str) -> str:
    """The rule id of a rejection reason: ``"not_paused: clock_resumed ..."`` -> ``not_paused``."""
    return reason.split(":", 1)[0].strip().lower() or UNKNOWN
