"""Domain errors. Raised once in the domain; each dialect renders them in its own body."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a dialect renders for the client."""


class NotFound(DomainError):
    def __init__(self, kind: str, ident: object = None):
        self.kind, self.ident = kind, ident
        super().__init__(f"{kind} not found" if ident is None else f"{kind} {ident} not found")


class Invalid(DomainError):
    """Validation failed: one or more (field, reason) pairs. `field` is the snake_case name."""

    def __init__(self, field: str | None = None, reason: str = "", *, problems=None):
        self.problems: list[tuple[str | None, str]] = list(problems or [])
        if field is not None or reason:
            self.problems.insert(0, (field, reason))
        super().__init__("; ".join(f"{f}: {r}" if f else r for f, r in self.problems))

    @property
    def field(self) -> str | None:
        return self.problems[0][0] if self.problems else None


class Conflict(DomainError):
    def __init__(self, field: str | None, reason: str):
        self.field, self.reason = field, reason
        super().__init__(reason)


class Forbidden(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class RateLimited(DomainError):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"too many failed attempts; retry in {retry_after} s")


def humanize(field: str | None) -> str:
    """'ip_address' -> 'Ip address' (the Rails full-message form spear clients know)."""
    if not field:
        return ""
    return field.replace("_", " ").strip().capitalize()


def full_messages(err: Invalid | Conflict) -> list[str]:
    if isinstance(err, Conflict):
        return [f"{humanize(err.field)} {err.reason}".strip()]
    return [f"{humanize(f)} {r}".strip() for f, r in err.problems]


class Malformed(DomainError):
    """The request body or a parameter cannot be read at all (bad JSON/XML): HTTP 400."""


class TooLarge(DomainError):
    """The request body is larger than a dialect accepts: HTTP 413."""


class Unsupported(DomainError):
    """The request body comes in a media type (Content-Type) the route does not take: HTTP 415."""


class Upstream(DomainError):
    """Another service we depend on (a carrier's API) failed: 502, or 504 when it timed out."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)
