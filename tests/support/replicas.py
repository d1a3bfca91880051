"""Replicas of `sla-ledger serve` as real processes on one PostgreSQL schema,
for the fleet tests: start, kill -9, restart on the same ports, and find
which one holds the projection leadership (its lock connection's
application_name carries its pid)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

SERVE = ("import sys; from ledger.cli.main import main; sys.exit(main())")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls `condition` (bounded, with backoff) until it is truthy."""
    deadline = time.monotonic() + timeout
    step = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)
        step = min(step * 2, 0.2)


@dataclass
class Replica:
    name: str
    database: str
    key: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    interval: float = 0.5
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    _serving: threading.Event = field(default_factory=threading.Event)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> None:
        self._serving.clear()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--database", self.database,
             "--listen", self.target, "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
             "--checkpoint-key", str(self.key), "--checkpoint-origin", "fleet.test/log",
             "--checkpoint-interval", str(self.interval)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self._serving.wait(timeout):
            raise AssertionError(f"{self.name} did not start:\n" + "".join(self.output[-40:]))

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:  # closed at the end of the output, not left to the collector
            for line in process.stdout:
                self.output.append(line)
                if "is serving on" in line:
                    self._serving.set()

    def kill(self) -> None:
        """kill -9: no shutdown, no final checkpoint, transactions cut mid-way."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)


def leader_pid(pg_url: str, schema: str) -> int | None:
    """The pid of the process holding the ledger's leadership lock, if any."""
    from projections.leadership import lock_key

    key = lock_key(schema)
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objid::bigint = %s::bigint & 4294967295 "
            "AND l.classid::bigint = (%s::bigint >> 32) & 4294967295", (key, key)).fetchone()
    if row is None:
        return None
    return int(str(row[0]).rsplit(" ", 1)[1])
