"""The partner's package loads without the server's dependencies: a fresh
interpreter imports ``ledger.client`` and neither the storage libraries nor any
server-side ledger package come with it (so it can ship on its own)."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_ONLY_LIBRARIES = ("eventsourcing", "psycopg", "psycopg_pool", "sqlite3", "structlog",
                         "prometheus_client")
CLIENT_MAY_LOAD = ("ledger.client", "ledger.domain", "ledger.audit", "ledger.v1")


def _modules_loaded_by(statement: str) -> list[str]:
    probe = f"{statement}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_import_ledger_client_loads_neither_eventsourcing_nor_psycopg() -> None:
    loaded = _modules_loaded_by("import ledger.client")
    assert "ledger.client.ledger_client" in loaded  # the probe did import the client
    libraries = sorted({m for m in loaded if m.split(".")[0] in SERVER_ONLY_LIBRARIES})
    assert libraries == []
    ledger = [m for m in loaded if m.startswith("ledger.")]
    outside = [m for m in ledger if not m.startswith(CLIENT_MAY_LOAD)]
    assert outside == []
