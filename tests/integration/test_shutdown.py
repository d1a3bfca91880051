"""Shutdown: background rounds that run in worker threads finish before the
store closes, and no task of the ledger is left pending on the loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ledger.grpc.server import ServerConfig
from ledger.server.bootstrap import start_ledger
from ledger.server.checkpoints import AuditConfig, checkpoint_periodically

FIXED_NOW = 1_790_000_000_000_000


def test_stop_leaves_no_task_of_the_ledger_pending(tmp_path: Path) -> None:
    async def start_and_stop() -> list[str]:
        ledger = await start_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", ServerConfig(listen="127.0.0.1:0"),
                                    clock=lambda: FIXED_NOW, audit=AuditConfig(key_path=str(tmp_path / "k.pem")))
        await ledger.stop(0.5)
        current = asyncio.current_task()
        return sorted(repr(t.get_coro()) for t in asyncio.all_tasks() if t is not current and not t.done())

    assert asyncio.run(start_and_stop()) == []


class BlockingAudit:
    """An audit service whose checkpoint round blocks until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def checkpoint_if_due(self, _micros: int, _asked: bool = False) -> None:
        self.entered.set()
        self.release.wait(10)
        self.finished.set()


def test_stopping_lets_the_round_in_progress_finish() -> None:
    async def scenario() -> tuple[bool, bool]:
        audit = BlockingAudit()
        wanted, stopping = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(checkpoint_periodically(audit, 3600.0, wanted, stopping))  # type: ignore[arg-type]
        await asyncio.to_thread(audit.entered.wait, 10)
        stopping.set()
        wanted.set()
        await asyncio.sleep(0)
        still_running = not task.done()
        audit.release.set()
        await asyncio.wait_for(task, 10)
        return still_running, audit.finished.is_set() and not task.cancelled()

    assert asyncio.run(scenario()) == (True, True)
