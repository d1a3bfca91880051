"""Domain errors. The gRPC layer maps each class to one status code in one place."""

from __future__ import annotations

#: How much of a caller's value an error message repeats: enough to recognise
#: it, never enough to push a status past a client's metadata limit.
QUOTE_CHARS = 48


def quote(value: str, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of at most the first ``limit`` characters of a caller's value."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"... ({len(value)} characters)"


class DomainError(Exception):
    """Base of every rule the domain can refuse."""


class InvalidArgument(DomainError):
    """A field is malformed or missing; `field` is the request path to it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TimelineViolation(DomainError):
    """The event would make the incident's timeline invalid (spec section 4/10)."""

    def __init__(self, rule: str, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.index = index


class NotFound(DomainError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {quote(ident)} not found")
        self.kind = kind
        self.ident = ident


class AlreadyExists(DomainError):
    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class PermissionDenied(DomainError):
    pass


class OutOfRange(DomainError):
    pass


class Unavailable(DomainError):
    """Not answerable yet (a read model catching up, the database unreachable
    or out of connections); retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(DomainError):
    """Concurrent writers collided (or a lock wait timed out); nothing was
    stored and the caller may safely retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 0.05) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Corrupted(DomainError):
    """The stored log differs from what the ledger recorded (gRPC DATA_LOSS)."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"the stored log was altered at position {position} ({reason}); "
                         "the ledger stopped signing and accepting writes")
        self.position = position
        self.reason = reason
