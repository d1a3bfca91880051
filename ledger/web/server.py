"""Runs the console (uvicorn) on the ledger's own event loop, beside the
gRPC server, reading through the same application services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from ledger.adapters.principals_file import PrincipalDirectory
from ledger.grpc.server import ServerConfigError, is_loopback
from ledger.web.app import ConsoleServices, build_app

STARTUP_SECONDS = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The ledger owns SIGINT/SIGTERM (graceful drain of both servers).
        yield


@dataclass
class RunningConsole:
    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def _split(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ServerConfigError(f"--http-listen {listen!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve_console(services: ConsoleServices, directory: PrincipalDirectory | None,
                        listen: str) -> RunningConsole:
    """Serves the console on `listen` until stopped. Without a principals
    file it refuses a non-loopback address, like the gRPC server."""
    if directory is None and not is_loopback(listen):
        raise ServerConfigError(
            f"refusing to serve the console on {listen!r} without authentication: give a "
            "principals file (--principals) or listen on loopback (e.g. 127.0.0.1:8080)")
    host, port = _split(listen)
    config = uvicorn.Config(build_app(services, directory), host=host, port=port, log_config=None,
                            access_log=False, lifespan="off", server_header=False)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
    # uvicorn exposes no start event; `started` flips once it listens.
    while not server.started:
        if task.done():
            with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
                task.result()
            raise ServerConfigError(f"cannot serve the console on {listen!r} (address in use?)")
        if asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            raise ServerConfigError(f"the console did not start on {listen!r}")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    return RunningConsole(server, task, host, int(bound[1]))
