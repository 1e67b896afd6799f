"""Domain errors carry a stable code; the web layer turns the code into words (app/messages.py)."""
from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the operation. `code` is stable; `field` names the form field."""

    def __init__(self, code: str, *, field: str | None = None, **params):
        super().__init__(code)
        self.code = code
        self.field = field
        self.params = params


class NotFound(DomainError):
    """The object does not exist *for this user* (answer 404, so ids are not confirmed)."""

    def __init__(self, code: str = "not_found", **params):
        super().__init__(code, **params)


class Forbidden(DomainError):
    pass


class Conflict(DomainError):
    """The state changed under the user (sold out, price changed, already used...)."""
