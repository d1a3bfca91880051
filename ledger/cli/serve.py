"""`sla-ledger serve`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import structlog

from ledger.grpc.server import ServerConfig, ServerConfigError, install_signal_handlers
from ledger.server.bootstrap import start_console, start_ledger
from ledger.server.checkpoints import AuditConfig


def redact_url(url: str) -> str:
    """The database URL without its password (operators paste this output)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


HOW_TO_QUERY = """
sla-ledger is serving on {target} (database {database}).
Try:
  sla-ledger report --agreement herts-converged --period 2026-10 --evaluated-at 2026-11-05T00:00:00Z
  sla-ledger incident INC-1003 --evaluated-at 2026-11-05T00:00:00Z
  sla-ledger events --from 0 | head
  buf curl --schema proto --protocol grpc --http2-prior-knowledge \\
    -d '{{"agreement_id":"herts-converged","period":"2026-10","evaluated_at":"2026-11-05T00:00:00Z"}}' \\
    http://{target}/ledger.v1.ReportService/GetPeriodReport
Stop with Ctrl-C.
"""

CONSOLE = """The web console is on {url}/
  the worked agreement's October statement:
  {url}/agreements/herts-converged/2026-10?evaluated_at=2026-11-05T00:00:00Z
"""


async def serve(args: argparse.Namespace) -> int:
    _configure_logging()
    log = structlog.get_logger("ledger.serve")
    config = ServerConfig(listen=args.listen, principals=args.principals, tls_cert=args.tls_cert,
                          tls_key=args.tls_key, tls_client_ca=args.tls_client_ca)
    try:
        interceptors, stop_metrics = _observability(args.metrics_listen)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"sla-ledger serve: cannot serve metrics on {args.metrics_listen!r}: {reason} "
              "(choose another --metrics-listen)", file=sys.stderr)
        return 2
    if args.checkpoint_interval <= 0:
        print("sla-ledger serve: --checkpoint-interval must be positive", file=sys.stderr)
        return 2
    if not args.checkpoint_key and not args.database.startswith("sqlite:"):
        print("sla-ledger serve: --checkpoint-key (SLA_LEDGER_CHECKPOINT_KEY) is required "
              "with PostgreSQL: checkpoints must be signed with a key that survives restarts",
              file=sys.stderr)
        return 2
    audit = AuditConfig(key_path=args.checkpoint_key, origin=args.checkpoint_origin,
                        interval=args.checkpoint_interval, scrub_rate=max(args.scrub_rate, 0))
    try:
        ledger = await start_ledger(args.database, config, interceptors=interceptors, audit=audit,
                                    observers=_observers())
    except (ServerConfigError, ValueError, OSError) as exc:
        print(f"sla-ledger serve: {exc}", file=sys.stderr)
        return 2
    _instrument(ledger)
    install_signal_handlers(ledger.running, asyncio.get_running_loop())
    host = args.listen.rsplit(":", 1)[0]
    target = f"{host}:{ledger.port}"
    console = None
    if args.http_listen:
        try:
            console = await start_console(ledger, args.http_listen)
        except ServerConfigError as exc:
            await ledger.stop()
            stop_metrics()
            print(f"sla-ledger serve: {exc}", file=sys.stderr)
            return 2
    if args.demo:
        summary = await asyncio.to_thread(_load_demo, target)
        log.info("demo scenario loaded", stored=summary.stored, duplicates=summary.duplicates,
                 rejected=len(summary.rejected))
    print(HOW_TO_QUERY.format(target=target, database=redact_url(args.database)),
          file=sys.stderr, flush=True)
    if console is not None:
        print(CONSOLE.format(url=console.url), file=sys.stderr, flush=True)
    try:
        await ledger.running.wait_for_termination()
    finally:
        if console is not None:
            await console.stop()
        await ledger.stop()
        stop_metrics()
    return 0


def _load_demo(target: str):  # type: ignore[no-untyped-def]
    from ledger.adapters.scenario import read_scenario
    from ledger.cli.common import demo_scenario_path
    from ledger.cli.load import load_scenario
    from ledger.client import LedgerClient

    with LedgerClient(target) as client:
        return load_scenario(client, read_scenario(demo_scenario_path()))


def _configure_logging() -> None:
    try:
        from ledger.observability.logging import configure_logging
    except ImportError:
        return
    configure_logging()


def _observability(metrics_listen: str):  # type: ignore[no-untyped-def]
    """Interceptors and the metrics listener, when the observability package is present."""
    try:
        from ledger.server import observability
    except ImportError:
        return [], lambda: None
    return observability.start(metrics_listen)


def _observers() -> list[Any]:
    """The metrics observer, when the observability package is present."""
    try:
        from ledger.server import observability
    except ImportError:
        return []
    return [observability.observer()]


def _instrument(ledger: object) -> None:
    """Feeds the ledger and SLA metrics from the running ledger."""
    try:
        from ledger.server import observability
    except ImportError:
        return
    observability.instrument(ledger)
