"""The SMTP listener (aiosmtpd): each mail handed over is stored before the sender hears 250.

The reply codes are the whole contract with the sending mail server:

* ``250`` only after the mail was filed and committed, so an acknowledged mail is never lost;
* ``451`` when filing failed (database unreachable, locked, a bug): the sending server keeps the mail and
  retries for days, which is how nothing gets dropped while the database is down;
* ``554`` for a mail over the size limit: retrying cannot help, so the sender gets a bounce at once.

The handler knows nothing of tickets: it is given an ``ingest`` function (raw bytes → short summary for
the log) and runs it in a worker thread, so a slow database never blocks the event loop that talks SMTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger("incucare.mail_in")

Ingest = Callable[[bytes], str]
"""Stores one raw mail and returns a short summary (e.g. ``#12 ticketed T2026-000001``); raises on failure."""
MEMORY_GUARD = 2
"""aiosmtpd stops buffering (and answers 552) beyond this multiple of the limit, so a huge upload cannot
exhaust memory; between the limit and that point our own check answers 554."""


class IntakeHandler:
    """aiosmtpd handler: every accepted DATA is passed to ``ingest`` with a ``Return-Path`` line on top.

    The ``Return-Path`` (the envelope sender, as a delivering mail server writes it) lets the loop guard
    recognise bounces, whose envelope sender is empty.
    """

    def __init__(self, ingest: Ingest, *, max_bytes: int) -> None:
        self.ingest = ingest
        self.max_bytes = max_bytes

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the mail, then answer 250; 554 when too large; 451 when storing failed."""
        content: bytes = envelope.original_content or b""
        if len(content) > self.max_bytes:
            limit_mb = self.max_bytes / (1024 * 1024)
            log.warning("refused a %d-byte mail from %s: over the %g MB limit", len(content), envelope.mail_from,
                        limit_mb)
            return f"554 5.3.4 Message too big for this system (limit {limit_mb:g} MB)"
        sender = (envelope.mail_from or "").strip().strip("<>")
        raw = f"Return-Path: <{sender}>\r\n".encode("utf-8", "replace") + content
        try:
            summary = await asyncio.get_running_loop().run_in_executor(None, self.ingest, raw)
        except Exception:
            log.exception("could not store a mail from %s; answered 451 so the sender retries", sender or "<>")
            return "451 4.3.0 Temporary failure storing the message, please try again later"
        log.info("stored a mail from %s: %s", sender or "<>", summary)
        return f"250 2.0.0 OK {summary}".strip()


def make_controller(ingest: Ingest, *, host: str, port: int, max_bytes: int) -> Controller:
    """An aiosmtpd server in its own thread (``start()``/``stop()``), for the CLI and the tests."""
    handler = IntakeHandler(ingest, max_bytes=max_bytes)
    return Controller(handler, hostname=host, port=port, data_size_limit=max_bytes * MEMORY_GUARD,
                      ident="incucare mail-in")
