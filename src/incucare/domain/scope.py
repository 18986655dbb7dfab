"""Tenancy: which slice of the installed base a user may see.

A lab sees only its own organisation, a regional partner only its region, an engineer their service
point's region; manufacturer staff see everything. Repositories turn a Scope into a query filter;
records outside it answer "not found", never "forbidden", so their existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from incucare.domain.model import STAFF_ROLES, Role


@dataclass(frozen=True)
class Scope:
    """The visible slice: everything, one region, or one customer organisation."""

    everything: bool = False
    region_id: int | None = None
    customer_id: int | None = None

    def allows(self, *, region_id: int | None, customer_id: int | None) -> bool:
        """Whether a record placed in ``region_id`` and owned by ``customer_id`` is visible."""
        if self.everything:
            return True
        if self.customer_id is not None:
            return customer_id == self.customer_id
        if self.region_id is not None:
            return region_id == self.region_id
        return False


def scope_for(role: Role, *, region_id: int | None, customer_id: int | None) -> Scope:
    """Work out a user's scope from their role and tenant attachment; a misconfigured user sees nothing."""
    if role is Role.CUSTOMER:
        return Scope(customer_id=customer_id) if customer_id is not None else Scope()
    if role is Role.PARTNER:
        return Scope(region_id=region_id) if region_id is not None else Scope()
    if role in STAFF_ROLES:
        return Scope(everything=True)
    return Scope()
