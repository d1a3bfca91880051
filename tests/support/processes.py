"""Real processes for the end-to-end suites: `sla-ledger serve` as a child
that can be killed with SIGKILL and restarted on the same ports (the fault
and fleet suites and the fleet benchmark all use this one harness), bounded
polling, the fleet's leadership lookup, a throwaway PostgreSQL cluster
(initdb + pg_ctl on its own port and data directory, so restarting it
disturbs nobody else's tests), and retrying writers."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from ledger.client import LedgerClient
from ledger.domain.events import LedgerEvent, Opened, Resolved, Responded
from tests.support.postgres import REQUIRE_POSTGRES

# the interpreter running the tests, so the child runs this checkout's code
SERVE = "import sys; from ledger.cli.main import main; sys.exit(main())"


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
class LedgerProcess:
    """`sla-ledger serve` in a child process. Its ports are chosen once, so a
    restart after kill() comes back where clients expect it; its output is
    kept for failure messages."""

    name: str
    database: str
    key: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    interval: float = 0.5
    origin: str | None = None
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    starts: int = 0
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
        origin = ["--checkpoint-origin", self.origin] if self.origin else []
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--database", self.database,
             "--listen", self.target, "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
             "--checkpoint-key", str(self.key), *origin,
             "--checkpoint-interval", str(self.interval)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.starts += 1
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


@contextmanager
def ledger_process(database: str, directory: Path) -> Iterator[LedgerProcess]:
    """One started server checkpointing every second, killed if a test leaves it running."""
    server = LedgerProcess("ledger", database, directory / "checkpoint.key", interval=1)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


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


@dataclass
class Postgres:
    url: str
    bindir: str
    datadir: str
    port: int
    as_user: list[str]

    def ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.datadir, "-w", *args],
                       check=True, capture_output=True, timeout=120)

    def restart(self) -> None:
        self.ctl("restart", "-m", "fast", "-o", self._options(), "-l", self.logfile)

    @property
    def logfile(self) -> str:
        # the postmaster must not inherit our pipes, or pg_ctl's output never ends
        return os.path.join(os.path.dirname(self.datadir), "pg.log")

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c autovacuum=off")


@contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster, removed afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        message = "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) for a throwaway cluster"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message + "; postgres")
    bindir = os.path.dirname(found[-1])
    root = tempfile.mkdtemp(prefix="sla-ledger-pg-")
    datadir = os.path.join(root, "data")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", datadir, "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True, timeout=120)
    port = free_port()
    pg = Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", bindir, datadir, port, as_user)
    pg.ctl("start", "-o", pg._options(), "-l", pg.logfile)
    try:
        yield pg
    finally:
        try:
            pg.ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class Writers:
    """Threads appending small incidents (opened, responded, resolved) with
    fixed event ids through retrying clients, until told to stop."""

    target: str
    start_at: int
    threads: int = 4
    acknowledged: dict[str, int] = field(default_factory=dict)
    attempted: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    batches: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._workers = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(self.threads)]

    def __enter__(self) -> Writers:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)  # daemon threads: a stuck one cannot hold the run

    def wait_for(self, batches: int, timeout: float = 120) -> None:
        """Blocks until at least ``batches`` batches were acknowledged in total."""
        with self._progress:
            assert self._progress.wait_for(lambda: self.batches >= batches or bool(self.failures),
                                           timeout), "the writers made no progress"

    def _events(self, writer: int, n: int) -> list[LedgerEvent]:
        incident = f"K{writer}-{n}"
        at = self.start_at + n * 60 * 10**6
        base: dict[str, Any] = {"incident_id": incident, "agreement_id": "herts-converged"}
        return [
            LedgerEvent(event_id=f"{incident}-o", occurred_at=at, actor="herts",
                        payload=Opened(service="desktop", priority="P3", custody="bt", reporter=""),
                        **base),
            LedgerEvent(event_id=f"{incident}-r", occurred_at=at + 60 * 10**6, actor="bt",
                        payload=Responded(), **base),
            LedgerEvent(event_id=f"{incident}-s", occurred_at=at + 120 * 10**6, actor="bt",
                        payload=Resolved(), **base),
        ]

    def _run(self, writer: int) -> None:
        n = 0
        with LedgerClient(self.target, timeout=10, backoff=0.05,
                          wait_for_ready=True) as client:
            while not self._stop.is_set():
                events = self._events(writer, n)
                with self._lock:
                    self.attempted.update(e.event_id for e in events)
                try:
                    results = client.append(events)
                except grpc.RpcError as exc:
                    with self._progress:
                        self.failures.append(f"{exc.code().name}: {exc.details()}")
                        self._progress.notify_all()
                    return
                with self._progress:
                    for result in results:
                        self.acknowledged[result.event_id] = result.position
                    self.batches += 1
                    self._progress.notify_all()
                n += 1
