"""The one place that turns a ticket into the fields notification templates use."""

from __future__ import annotations

from typing import Any

from incucare.adapters.db.tables import Ticket
from incucare.domain.model import Tier
from incucare.services.tickets import owner_of

CLOCK_LABELS: dict[str, dict[str, str]] = {
    "first_response": {"zh": "首响", "en": "first response"},
    "onsite": {"zh": "上门", "en": "on-site arrival"},
    "resolution": {"zh": "闭环", "en": "resolution"},
}


def ticket_context(ticket: Ticket, **extra: Any) -> dict[str, Any]:
    """Number, customer, device, owner, tier and link of a ticket, plus whatever the message adds.

    Values may be ``{"zh": ..., "en": ...}`` mappings or labelled enums: each recipient reads their language.
    """
    owner = owner_of(ticket)
    context: dict[str, Any] = {
        "number": ticket.number, "customer": ticket.customer.name, "device": ticket.device.serial,
        "owner": {"zh": owner.queue.zh, "en": owner.queue.en} if owner.queue is not None else owner.display,
        "tier": Tier(ticket.tier), "url": f"/tickets/{ticket.id}", "reason": "", "due_at": "",
    }
    context.update(extra)
    return context
