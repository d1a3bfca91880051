"""What `sla-ledger serve` prints must not leak the database password."""

from __future__ import annotations

import pytest

from ledger.cli.serve import redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ledger:s3cret@db.example:5432/ledger?schema=s",
     "postgresql://ledger:***@db.example:5432/ledger?schema=s"),
    ("postgresql://ledger:s3cret@db.example/ledger", "postgresql://ledger:***@db.example/ledger"),
    ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
    ("sqlite:///var/lib/sla-ledger/ledger.db", "sqlite:///var/lib/sla-ledger/ledger.db"),
])
def test_database_password_is_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)
