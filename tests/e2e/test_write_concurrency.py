"""Many writers against a real server while the projections follow: no stall,
no failed call, every event stored once, positions gap-free and each call's
events consecutive and in request order."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ledger.client import LedgerClient
from ledger.domain.events import AppendResult
from tests.support.histories import incident_event, opened, register_herts_remotely
from tests.support.ledger_server import running_ledger

WRITERS = 16
CALLS = 12  # per writer: an open, then events on that incident


def _writer(target: str, w: int, results: list[list[AppendResult]],
            errors: list[BaseException]) -> None:
    try:
        with LedgerClient(target, timeout=30) as client:
            incident = f"W{w:02d}"
            results.append(client.append([opened(f"{incident}-open", incident)]))
            for n in range(1, CALLS):
                minute = f"2026-10-10T09:{n:02d}:00Z"
                kind = "responded" if n == 1 else "priority_changed"
                fields = {"priority": "P2" if n % 2 else "P3"} if n > 1 else {}
                batch = [incident_event(f"{incident}-{n}", incident, kind, minute, "hp"
                                        if kind == "responded" else "herts", **fields)]
                if n % 3 == 0:  # some calls carry a second incident's open too
                    other = f"{incident}-X{n}"
                    batch.append(opened(f"{other}-open", other))
                results.append(client.append(batch))
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def _hammer(target: str) -> list[list[AppendResult]]:
    results: list[list[AppendResult]] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_writer, args=(target, w, results, errors))
               for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_sixteen_writers_with_projections_following(
        database_url: str, clock: Callable[[], int]) -> None:
    """On SQLite (the default) this is the case that used to stall for the
    pool's timeout and fail calls with UNKNOWN."""
    with running_ledger(database_url, clock) as (ledger, target):
        with LedgerClient(target) as client:
            register_herts_remotely(client)
        results = _hammer(target)
        assert ledger.runner is not None
        head = ledger.store.max_position()
        assert ledger.runner.wait_for(head, 30)
        _check_log(ledger.store, results)


def _check_log(store: object, results: list[list[AppendResult]]) -> None:
    log = store.read_log(0, limit=100_000)  # type: ignore[attr-defined]
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    ids = [e.event_id for e in log]
    assert len(ids) == len(set(ids))
    sent = [r.event_id for call in results for r in call]
    assert sorted(ids) == sorted(["register", *sent])
    by_id = {e.event_id: e.position for e in log}
    for call in results:
        positions = [r.position for r in call]
        assert positions == [by_id[r.event_id] for r in call]
        # A call's events are consecutive and in request order.
        assert positions == list(range(positions[0], positions[0] + len(positions)))
