"""Domain errors: each maps to one HTTP status and one user-facing message in the web layer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class DomainError(Exception):
    """Base of every rule violation; ``code`` is stable and machine-readable."""

    code = "domain_error"

    def __init__(self, message: str, *, zh: str | None = None,
                 details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh or message
        self.details = details or []

    def text(self, lang: str) -> str:
        """The message in ``lang``: Chinese unless English is asked for."""
        return self.message if lang == "en" else self.zh


class NotFound(DomainError):
    """The record does not exist, or lies outside the caller's scope (we never say which)."""

    code = "not_found"


class Conflict(DomainError):
    """The request is well-formed but clashes with the current state (duplicate serial, stale data)."""

    code = "conflict"


class IllegalTransition(Conflict):
    """A ticket was asked to move to a status its lifecycle does not allow from where it is."""

    code = "illegal_transition"


class ValidationFailed(DomainError):
    """Input that breaks a business rule (a report dated in the future, an unknown channel)."""

    code = "validation_failed"


class PermissionDenied(DomainError):
    """The caller may see the record but their role may not perform this action on it."""

    code = "permission_denied"


@dataclass(frozen=True)
class FieldError:
    """One precise complaint about one input field, used by imports and form validation."""

    field: str
    message: str
    row: int | None = None
    extra: dict[str, object] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"field": self.field, "message": self.message}
        if self.row is not None:
            data["row"] = self.row
        data.update(self.extra)
        return data
