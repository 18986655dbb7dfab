"""Tenancy: which slice of the installed base a user may see.

Only outsiders are restricted: a customer (lab) sees only its own organisation and a regional partner
only its region. Manufacturer staff, field engineers included, see the whole installed base, because
engineers are sent across regions when a job needs them. adapters/db/scoping.py turns a Scope into
the SQL filters every read uses; records outside it answer "not found", never "forbidden", so their
existence does not leak.
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


def scope_for(role: Role, *, region_id: int | None, customer_id: int | None) -> Scope:
    """Work out a user's scope from their role and tenant attachment; a misconfigured user sees nothing."""
    if role is Role.CUSTOMER:
        return Scope(customer_id=customer_id) if customer_id is not None else Scope()
    if role is Role.PARTNER:
        return Scope(region_id=region_id) if region_id is not None else Scope()
    if role in STAFF_ROLES:
        return Scope(everything=True)
    return Scope()
