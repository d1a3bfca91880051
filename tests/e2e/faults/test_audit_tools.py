"""The auditor's tools do not launder tampering: `rebuild` refuses leaves that
differ from a signed checkpoint, `verify --target --checkpoint OLD` re-hashes
the events it fetches, and `verify` without a pinned key fails unless told
to trust the key it was handed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.cli.main import main
from tests.e2e.faults.harness import token, two_agreements
from tests.e2e.faults.tampering import edit
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_verify_needs_a_pinned_key_and_rehashes_what_it_fetches(
        database_url: str, clock: FakeClock, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture:
        auth = ("--target", fixture.target, "--token", token("admin"))
        with fixture.client() as client:
            response = client.audit.checkpoint(refresh=True)
        old = tmp_path / "old.txt"
        old.write_text(response.checkpoint)
        key = response.public_key

        code, out = _run(capsys, "verify", "--checkpoint", str(old), *auth)
        assert code == 2 and "no key pinned" in out and "--trust-bundle-key" in out
        code, out = _run(capsys, "verify", "--checkpoint", str(old), "--key", key, *auth)
        assert code == 0 and "re-hashed" in out, out

        bundle = tmp_path / "bundle"
        assert _run(capsys, "export", "--to", str(bundle), *auth)[0] == 0
        code, out = _run(capsys, "verify", str(bundle))
        assert code == 2 and "no key pinned" in out
        assert _run(capsys, "verify", str(bundle), "--trust-bundle-key")[0] == 0
        assert _run(capsys, "verify", str(bundle), "--key", key)[0] == 0

        edit(database_url, 7)
        code, out = _run(capsys, "verify", "--checkpoint", str(old), "--key", key, *auth)
        assert code == 1 and "7" in out, out


def test_rebuild_refuses_leaves_that_differ_from_a_signed_checkpoint(
        database_url: str, clock: FakeClock, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture, \
            fixture.client() as client:
        client.audit.checkpoint(refresh=True)
    assert _run(capsys, "rebuild", "--database", database_url, "--projection", "audit_merkle")[0] == 0
    edit(database_url, 12)
    code, out = _run(capsys, "rebuild", "--database", database_url)
    assert code == 1 and "refusing" in out and "position 12" in out, out
