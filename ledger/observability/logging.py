"""Structured logging for the whole process, configured once at start-up.

``configure_logging()`` sets up structlog and the standard library's root
logger (grpc, psycopg and eventsourcing log through it) to write one event per
line to stdout: JSON by default, a readable console format when stdout is a
terminal. Timestamps are ISO 8601 in UTC. Keys that name secrets (token,
authorization, secret, password, api key, private/signing key, cookie,
credential) are redacted wherever they appear, and ``Bearer ...`` values are
masked even inside messages.

Per-request context goes through ``structlog.contextvars``: the gRPC
interceptor binds ``request_id`` and ``rpc_method``, the auth layer binds
``principal``, ``org`` and ``role``, servicers may bind ``incident_id``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"

#: Keys whose values are never written.
SECRET_KEY = re.compile(
    r"token|authori[sz]ation|secret|passw|api[_-]?key|private[_-]?key|signing[_-]?key"
    r"|cookie|credential",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s,;\"']+")

_HANDLER_MARK = "_sla_ledger_handler"


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    if depth >= 4:
        return value
    if isinstance(value, MutableMapping | dict):
        return {
            k: REDACTED if isinstance(k, str) and SECRET_KEY.search(k) else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        # Metadata arrives as (key, value) pairs.
        if len(value) == 2 and isinstance(value[0], str) and SECRET_KEY.search(value[0]):
            return (value[0], REDACTED)
        scrubbed = [_scrub(v, depth + 1) for v in value]
        return tuple(scrubbed) if isinstance(value, tuple) else scrubbed
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact secret-named keys (nested too) and bearer credentials."""
    for key in list(event_dict):
        if key.startswith("_") or key == "exc_info":
            continue
        if SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _add_logger_name(logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name

    def msg(self, message: str) -> None:
        # A log line must never keep the ledger from working or stopping: when
        # the stream's reader has gone (its supervisor died, a closed pipe) a
        # write raises, and the shutdown that logs "draining" first would
        # never run. The line is dropped instead.
        with contextlib.suppress(OSError, ValueError):
            super().msg(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg
    failure = msg


class _NamedWriteLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self._file, str(args[0]) if args else "")


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return number


def configure_logging(
    json: bool | None = None, level: str | int = "INFO", stream: TextIO | None = None
) -> None:
    """Configure structlog and stdlib logging for the process.

    ``json``: True = JSON lines, False = console; None = JSON unless ``stream``
    (default stdout) is a terminal. Calling it again replaces the configuration.
    """
    out = stream if stream is not None else sys.stdout
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    number = _level_number(level)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
    if json:
        # Structured tracebacks without local variables: locals may hold credentials.
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=hasattr(out, "isatty") and out.isatty(),
            exception_formatter=structlog.dev.plain_traceback,
        )

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=_NamedWriteLoggerFactory(out),
        # Not cached, so a later configure_logging() or structlog.testing.capture_logs()
        # reaches loggers created at import time.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
