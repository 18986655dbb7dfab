"""Who is asking and what time it is: passed into every use case explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from incucare.domain.model import MANAGER_ROLES, STAFF_ROLES, Role
from incucare.domain.scope import Scope, scope_for

Clock = Callable[[], datetime]
"""Returns the current aware UTC time; tests pass a fixed or stepping clock."""


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """The caller of a use case: their id, display name, role and the slice of data they may see."""

    user_id: int | None
    name: str
    role: Role
    region_id: int | None = None
    customer_id: int | None = None
    service_point_id: int | None = None
    language: str = "zh"
    scope: Scope = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "scope", scope_for(self.role, region_id=self.region_id, customer_id=self.customer_id)
        )

    @property
    def is_staff(self) -> bool:
        """Manufacturer staff (HQ, agents, dispatchers, engineers)."""
        return self.role in STAFF_ROLES

    @property
    def is_manager(self) -> bool:
        """May edit master data and import the installed base."""
        return self.role in MANAGER_ROLES


SYSTEM = Actor(user_id=None, name="system", role=Role.ADMIN)
"""The actor for imports, demo loading and scheduled jobs run from the CLI."""
