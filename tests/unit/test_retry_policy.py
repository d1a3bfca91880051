"""Retries are gRPC's: the client's service config and the server's pushback."""

from __future__ import annotations

import json
from typing import Any

from ledger.client import retry_service_config
from ledger.domain.errors import Conflict, NotFound, Unavailable
from ledger.grpc.errors import (
    MAX_BACKOFF,
    PREVIOUS_ATTEMPTS_KEY,
    PUSHBACK_KEY,
    attempt_of,
    rich_status,
    with_pushback,
)


def _method_config(attempts: int, backoff: float, **options: bool) -> dict[str, Any]:
    (method,) = json.loads(retry_service_config(attempts, backoff, **options))["methodConfig"]
    assert method["name"] == [{}]  # every method of every service
    config: dict[str, Any] = method
    return config


def test_the_retry_policy_retries_aborted_and_unavailable_with_capped_backoff() -> None:
    policy = _method_config(3, 0.2)["retryPolicy"]
    assert policy == {"maxAttempts": 3, "initialBackoff": "0.200000s", "maxBackoff": "5s",
                      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "ABORTED"]}
    assert MAX_BACKOFF == 5.0


def test_attempts_are_capped_where_grpc_caps_them_and_one_attempt_is_no_retry() -> None:
    assert _method_config(200, 0.05)["retryPolicy"]["maxAttempts"] == 5
    assert "retryPolicy" not in _method_config(1, 0.2)
    assert "waitForReady" not in _method_config(5, 0.2)
    assert _method_config(5, 0.2, wait_for_ready=True)["waitForReady"] is True


def _pushback(status: Any) -> int | None:
    trailers = dict(status.trailing_metadata)
    return int(trailers[PUSHBACK_KEY]) if PUSHBACK_KEY in trailers else None


def test_retryable_answers_push_back_no_sooner_than_their_retry_info() -> None:
    for attempt in (1, 2, 5, 30):
        conflict = _pushback(with_pushback(rich_status(Conflict("busy", 0.05)), attempt))
        outage = _pushback(with_pushback(rich_status(Unavailable("down", 1.0)), attempt))
        assert conflict is not None and 50 <= conflict <= 50 + MAX_BACKOFF * 1000
        assert outage is not None and 1000 <= outage <= 1000 + MAX_BACKOFF * 1000
    assert _pushback(with_pushback(rich_status(NotFound("agreement", "AG-9")), 1)) is None


def test_the_attempt_comes_from_grpcs_retry_header() -> None:
    assert attempt_of(()) == 1
    assert attempt_of(((PREVIOUS_ATTEMPTS_KEY, "2"), ("x-request-id", "r"))) == 3
    assert attempt_of(((PREVIOUS_ATTEMPTS_KEY, "junk"),)) == 1
