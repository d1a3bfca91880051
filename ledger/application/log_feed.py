"""Wakes log followers when events are stored.

Appends run on a writer thread; followers are coroutines. `notify` is safe to
call from any thread. Followers also re-poll on a timeout, which covers events
written by another process sharing the database.
"""

from __future__ import annotations

import asyncio
import contextlib


class LogFeed:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.last_position = 0
        self._changed = asyncio.Event()

    def notify(self, position: int) -> None:
        self.loop.call_soon_threadsafe(self._advance, position)

    def _advance(self, position: int) -> None:
        self.last_position = max(self.last_position, position)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_beyond(self, position: int, timeout: float) -> None:
        if self.last_position > position:
            return
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
