"""A real ledger gRPC server on an ephemeral port, for end-to-end tests.

The server's asyncio loop runs in a background thread so tests can use the
synchronous client exactly as partner systems do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ledger.application.observer import LedgerObserver
from ledger.client import LedgerClient
from ledger.grpc.server import ServerConfig
from ledger.server.bootstrap import Ledger, start_console, start_ledger
from ledger.server.checkpoints import AuditConfig


@contextmanager
def running_ledger(database: str, clock: Callable[[], int],
                   config: ServerConfig | None = None,
                   audit: AuditConfig | None = None,
                   observers: Sequence[LedgerObserver] = ()) -> Iterator[tuple[Ledger, str]]:
    with running_ledger_and_console(database, clock, config, audit, console=False,
                                    observers=observers) as (ledger, target, _):
        yield ledger, target


@contextmanager
def running_ledger_and_console(database: str, clock: Callable[[], int],
                               config: ServerConfig | None = None,
                               audit: AuditConfig | None = None, *,
                               console: bool = True,
                               observers: Sequence[LedgerObserver] = (),
                               ) -> Iterator[tuple[Ledger, str, str]]:
    """The ledger, and with `console` its web console on an ephemeral
    loopback port: (ledger, gRPC target, console URL or "")."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    cfg = config or ServerConfig(listen="127.0.0.1:0")
    ledger = asyncio.run_coroutine_threadsafe(start_ledger(database, cfg, clock=clock, audit=audit,
                                                           observers=observers),
                                              loop).result(30)
    web = None
    try:
        if console:
            web = asyncio.run_coroutine_threadsafe(
                start_console(ledger, "127.0.0.1:0", clock), loop).result(30)
        yield ledger, f"127.0.0.1:{ledger.port}", web.url if web else ""
    finally:
        if web is not None:
            asyncio.run_coroutine_threadsafe(web.stop(), loop).result(30)
        asyncio.run_coroutine_threadsafe(ledger.stop(1.0), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def ledger_client(database: str, clock: Callable[[], int]) -> Iterator[tuple[Ledger, LedgerClient]]:
    with running_ledger(database, clock) as (ledger, target), LedgerClient(target, timeout=30) as client:
        yield ledger, client
