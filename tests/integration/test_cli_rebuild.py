"""`sla-ledger rebuild`: read models rebuilt offline equal the ones the
ledger maintained, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger.adapters.eventstore import EventStore
from ledger.application.ledger_service import LedgerService
from ledger.cli.main import main
from projections.audit_tree import MerkleProjection
from projections.runner import ProjectionRunner
from projections.sla_projection import SlaProjection
from tests.support.histories import dump, load, register_herts

LEAVES = "SELECT position, leaf_hash FROM {} ORDER BY position"


def leaves(runner: ProjectionRunner) -> list[tuple[Any, ...]]:
    with runner.db.transaction(commit=False) as tx:
        return tx.fetchall(LEAVES.format(tx.table("audit_leaves")))


def test_rebuild_command_reproduces_the_live_models(store: EventStore, database_url: str,
                                                    clock: Callable[[], int],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    service = LedgerService(store, clock)
    register_herts(service)
    runner = ProjectionRunner(store, [MerkleProjection(), SlaProjection(store)], batch_size=7)
    load(service, runner, seed=21, incidents=12)
    live, live_leaves = dump(runner), leaves(runner)
    assert len(live_leaves) == store.max_position()

    assert main(["rebuild", "--database", database_url, "--batch", "50"]) == 0
    after = ProjectionRunner(store, [MerkleProjection(), SlaProjection(store)])
    assert after.positions() == {"audit_merkle": store.max_position(),
                                 "sla": store.max_position()}
    assert dump(after) == live
    assert leaves(after) == live_leaves
    assert "sla: rebuilt from" in capsys.readouterr().err


def test_rebuild_refuses_a_bad_batch(database_url: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rebuild", "--database", database_url, "--batch", "0"]) == 2
    assert "--batch must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["rebuild", "--database", database_url, "--projection", "nope"])
    assert exit_info.value.code == 2
