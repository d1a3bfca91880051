"""Reading 28: incident and event ids are scoped by agreement. A caller who
names one without its agreement means the only agreement it may see that
holds the id; whatever it cannot see is NOT_FOUND, the answer for an id that
exists nowhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory
from ledger.domain.errors import InvalidArgument, NotFound, quote


def visible_agreement_of(principal: Principal, kind: str, ident: str, candidates: Iterable[str],
                         history_of: Callable[[str], AgreementHistory | None]) -> str:
    """The one agreement among ``candidates`` the principal may see."""
    mine = sorted(a for a in set(candidates)
                  if (h := history_of(a)) is not None and principal.may_see(h.parties()))
    if not mine:
        raise NotFound(kind, ident)
    if len(mine) > 1:
        raise InvalidArgument("agreement_id", f"{kind} {quote(ident)} exists in more than one "
                              "agreement you can see: name its agreement")
    return mine[0]
