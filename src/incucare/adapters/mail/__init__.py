"""Inbound e-mail: parsing RFC 5322 messages, the SMTP listener and the maildir reader.

These adapters only turn bytes and files into ``InboundReport`` values and back-pressure codes; what a
message becomes (ticket, thread, review queue) is decided in ``services/inbound`` and
``services/mail_intake``.
"""
