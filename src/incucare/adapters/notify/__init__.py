"""Outbound notification channels: e-mail over SMTP and chat-robot webhooks.

The outbox in ``services/notifications`` depends only on the two small protocols below, so a worker
can be given real senders (built from Settings) and tests can point them at local servers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class DeliveryError(Exception):
    """A message could not be handed over. ``permanent`` means retrying cannot help (address refused)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class EmailSender(Protocol):
    """Hands one message to a mail server; raises ``DeliveryError`` when the server does not take it."""

    def send(self, *, to: str, subject: str, body: str, message_ref: str = "") -> None: ...


class WebhookSender(Protocol):
    """POSTs one JSON document; raises ``DeliveryError`` unless the receiver confirms it."""

    def post(self, url: str, payload: Mapping[str, object]) -> None: ...
