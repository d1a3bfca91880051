"""The SQLite pool: a writer holding its connection may take a reader while
another writer waits (the library's pool stalled there until its timeout),
and the writer is granted in request order."""

from __future__ import annotations

import threading
from pathlib import Path

from ledger.adapters.recorders import FairLock, SQLitePool


def test_a_writer_takes_a_reader_while_another_writer_waits(tmp_path: Path) -> None:
    pool = SQLitePool(db_name=str(tmp_path / "p.db"), pool_size=2, max_overflow=2,
                      pool_timeout=3.0)
    writer = pool.get_connection(is_writer=True)
    waiting = threading.Event()
    outcome: list[object] = []

    def second_writer() -> None:
        waiting.set()
        try:
            conn = pool.get_connection(is_writer=True)
            outcome.append("writer")
            pool.put_connection(conn)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second_writer)
    thread.start()
    waiting.wait(5)
    # The library's pool kept its request queue locked by the waiting
    # writer here, so this reader timed out: the projection runner's stall.
    reader = pool.get_connection(is_writer=False)
    pool.put_connection(reader)
    pool.put_connection(writer)
    thread.join(10)
    assert outcome == ["writer"]
    pool.close()


def test_the_fair_lock_grants_in_request_order() -> None:
    lock = FairLock()
    assert lock.acquire()
    order: list[int] = []
    queued = [threading.Event() for _ in range(3)]

    def waiter(n: int) -> None:
        queued[n].set()
        assert lock.acquire(timeout=10)
        order.append(n)
        lock.release()

    threads = []
    for n in range(3):
        thread = threading.Thread(target=waiter, args=(n,))
        thread.start()
        queued[n].wait(5)
        while len(lock._waiting) < n + 1:  # until thread n is queued behind the others
            threading.Event().wait(0.001)
        threads.append(thread)
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2]
    assert lock.acquire(timeout=0.01)
    assert not lock.acquire(timeout=0.01)  # held: a bounded wait gives up
    lock.release()
