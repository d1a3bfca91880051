"""Streams that end safely: subscribers that drop, die or stop reading never
crash, hang or leak in the server, and the CLI exits quietly on a closed pipe."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from ledger.v1 import log_pb2, log_pb2_grpc
from tests.conftest import FakeClock
from tests.faults.harness import token, two_agreements

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).with_name("sla-ledger"))


def _env(name: str = "admin") -> dict[str, str]:
    return {**os.environ, "SLA_LEDGER_TOKEN": token(name)}


def test_dropped_killed_and_piped_subscribers_leave_the_server_serving(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    with two_agreements(database_url, clock, tmp_path) as fixture:
        total = fixture.ledger.store.max_position()
        # `sla-ledger events --from 0 | head -2`: the demo's own suggestion.
        for _ in range(5):
            piped = subprocess.run(
                ["bash", "-o", "pipefail", "-c", f"'{CLI}' events --target {fixture.target} "
                 "--from 0 | head -2"], check=False, env=_env(), capture_output=True, text=True, timeout=60)
            assert piped.returncode == 0, piped.stderr
            assert piped.stderr == "" and len(piped.stdout.splitlines()) == 2
        # Followers killed with SIGKILL mid-stream, and followers that cancel.
        for _ in range(3):
            follower = subprocess.Popen([CLI, "events", "--target", fixture.target, "--follow"],
                                        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert follower.stdout is not None
            assert follower.stdout.readline()  # streaming has begun
            follower.send_signal(signal.SIGKILL)
            follower.wait(30)
        with grpc.insecure_channel(fixture.target) as channel:
            stub = log_pb2_grpc.LogServiceStub(channel)
            metadata = [("authorization", f"Bearer {token('admin')}")]
            for _ in range(5):
                stream = stub.ReadLog(log_pb2.ReadLogRequest(follow=True), metadata=metadata)
                next(stream)
                stream.cancel()
            # the server is up and serves the whole log to the next caller
            got = list(stub.ReadLog(log_pb2.ReadLogRequest(), metadata=metadata, timeout=30))
        assert len(got) == total


class _StuckContext:
    """A call whose reader never reads: every write waits for ever."""

    def __init__(self) -> None:
        self.aborted: tuple[Any, str] | None = None

    async def write(self, message: Any) -> None:
        await asyncio.Event().wait()

    async def abort(self, code: Any, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()

    def cancelled(self) -> bool:
        return False


def test_a_follower_that_stops_reading_is_ended_resource_exhausted(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    from ledger.grpc.auth import principal_scope
    from ledger.grpc.servicers import LogServicer

    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture:
        ledger = fixture.ledger
        servicer = LogServicer(ledger.service, ledger.executors, ledger.feed, stall_seconds=0.05)
        context = _StuckContext()

        async def follow() -> None:
            from ledger.domain.access import LOCAL_ADMIN

            with principal_scope(LOCAL_ADMIN):
                await servicer.ReadLog(log_pb2.ReadLogRequest(follow=True), context)

        with pytest.raises(grpc.aio.AbortError):
            asyncio.run(asyncio.wait_for(follow(), 30))
    assert context.aborted is not None
    assert context.aborted[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "after_position" in context.aborted[1]
