"""Turns a tenant Scope into SQL filters, one function per kind of record (one place for tenancy)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, false, select, true

from incucare.adapters.db.tables import Contract, Customer, Device, Site, Ticket
from incucare.domain.scope import Scope


def customers_visible(scope: Scope) -> ColumnElement[bool]:
    """Customers the scope may see: its own organisation, or those with a site in its region."""
    if scope.everything:
        return true()
    if scope.customer_id is not None:
        return Customer.id == scope.customer_id
    if scope.region_id is not None:
        in_region = exists(
            select(Site.id).where(Site.customer_id == Customer.id, Site.region_id == scope.region_id)
        )
        return (Customer.region_id == scope.region_id) | in_region
    return false()


def sites_visible(scope: Scope) -> ColumnElement[bool]:
    """Sites of the scope's organisation or in its region."""
    if scope.everything:
        return true()
    if scope.customer_id is not None:
        return Site.customer_id == scope.customer_id
    if scope.region_id is not None:
        return Site.region_id == scope.region_id
    return false()


def devices_visible(scope: Scope) -> ColumnElement[bool]:
    """Devices owned by the scope's organisation or installed in its region."""
    if scope.everything:
        return true()
    if scope.customer_id is not None:
        return Device.customer_id == scope.customer_id
    if scope.region_id is not None:
        return Device.site_id.in_(select(Site.id).where(Site.region_id == scope.region_id))
    return false()


def contracts_visible(scope: Scope) -> ColumnElement[bool]:
    """Contracts of visible customers."""
    if scope.everything:
        return true()
    return Contract.customer_id.in_(select(Customer.id).where(customers_visible(scope)))


def tickets_visible(scope: Scope) -> ColumnElement[bool]:
    """Tickets of the scope's organisation or raised in its region."""
    if scope.everything:
        return true()
    if scope.customer_id is not None:
        return Ticket.customer_id == scope.customer_id
    if scope.region_id is not None:
        return Ticket.region_id == scope.region_id
    return false()
