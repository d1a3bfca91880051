"""Who may do what: the principal behind a call and the checks of what it
may read and write.

A principal is an org acting in a role. Providers and customers act for their
own org and see only the agreements they are party to; an auditor reads
everything and writes nothing; an admin (operator, importer) may do anything,
including appending on behalf of another org.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledger.domain.errors import PermissionDenied

Role = Literal["provider", "customer", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("provider", "customer", "auditor", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    org: str
    role: Role

    @property
    def reads_everything(self) -> bool:
        return self.role in ("auditor", "admin")

    def may_see(self, parties: frozenset[str]) -> bool:
        return self.reads_everything or self.org in parties

    def require_writer(self) -> None:
        if self.role == "auditor":
            raise PermissionDenied(f"{self.name}: auditors read and never write")

    def require_admin(self, action: str) -> None:
        if self.role != "admin":
            raise PermissionDenied(f"{self.name}: only an admin may {action}")

    def actor_for(self, requested_actor: str) -> str:
        """The org an event is recorded as acting for.

        Only an admin may act for another org; everyone else acts as itself.
        """
        self.require_writer()
        if not requested_actor or requested_actor == self.org:
            return self.org
        if self.role != "admin":
            raise PermissionDenied(
                f"{self.name} (org {self.org!r}) may not append on behalf of {requested_actor!r}"
            )
        return requested_actor


LOCAL_ADMIN = Principal(name="local-admin", org="local", role="admin")
