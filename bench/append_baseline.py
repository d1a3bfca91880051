"""The trivial baseline service of bench/append.py: the same
`IncidentService.AppendEvents` as the ledger, answered with one plain INSERT
per call (PostgreSQL: autocommit, from a pool of 16 connections; SQLite: WAL,
synchronous=FULL) or one 100-row transaction per batch call. bench/append.py
starts it as its own process:

  python -m bench.append_baseline --db URL --port-file FILE
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from ledger.v1 import incidents_pb2


def _response(request: incidents_pb2.AppendEventsRequest, first: int) -> bytes:
    return incidents_pb2.AppendEventsResponse(results=[
        incidents_pb2.AppendResult(event_id=e.event_id, position=first + i)
        for i, e in enumerate(request.events)]).SerializeToString()


async def serve_trivial(db: str, port_file: str) -> None:
    if db.startswith("sqlite"):
        insert = _sqlite_inserter(db.split("///", 1)[1])
    else:
        insert = await _pg_inserter(db)

    async def append(body: bytes, context: Any) -> bytes:
        request = incidents_pb2.AppendEventsRequest.FromString(body)
        rows = [(e.event_id, e.SerializeToString()) for e in request.events]
        return _response(request, await insert(rows))

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "ledger.v1.IncidentService",
        {"AppendEvents": grpc.unary_unary_rpc_method_handler(append)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    with open(port_file, "w") as f:
        f.write(str(port))
    await server.wait_for_termination()


def _sqlite_inserter(path: str) -> Callable[[list[tuple[str, bytes]]], Any]:
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS plain (id INTEGER PRIMARY KEY, "
                 "event_id TEXT NOT NULL UNIQUE, body BLOB NOT NULL)")
    writer = ThreadPoolExecutor(1)

    def write(rows: list[tuple[str, bytes]]) -> int:
        conn.execute("BEGIN")
        cur = conn.executemany("INSERT INTO plain (event_id, body) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
        return int(cur.lastrowid or 0)

    async def insert(rows: list[tuple[str, bytes]]) -> int:
        return await asyncio.get_running_loop().run_in_executor(writer, write, rows)

    return insert


async def _pg_inserter(url: str) -> Callable[[list[tuple[str, bytes]]], Any]:
    from urllib.parse import parse_qs, urlparse

    from psycopg_pool import AsyncConnectionPool

    schema = parse_qs(urlparse(url).query).get("schema", ["public"])[0]
    table = f'"{schema}".plain'
    pool = AsyncConnectionPool(url.split("?", 1)[0], min_size=16, max_size=16,
                               kwargs={"autocommit": True}, open=False)
    await pool.open()
    async with pool.connection() as conn:
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, "
                           "event_id text NOT NULL UNIQUE, body bytea NOT NULL)")

    async def insert(rows: list[tuple[str, bytes]]) -> int:
        async with pool.connection() as conn:
            if len(rows) == 1:
                cur = await conn.execute(
                    f"INSERT INTO {table} (event_id, body) VALUES (%s, %s) RETURNING id", rows[0])
                found = await cur.fetchone()
                return int(found[0]) if found else 0
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(f"INSERT INTO {table} (event_id, body) VALUES (%s, %s)",
                                      rows)
            return 0

    return insert


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.append_baseline")
    parser.add_argument("--db", required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    asyncio.run(serve_trivial(args.db, args.port_file))


if __name__ == "__main__":
    main()
