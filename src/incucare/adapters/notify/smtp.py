"""E-mail over SMTP with the standard library: UTF-8 subject and body, optional STARTTLS and login."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from incucare.adapters.notify import DeliveryError


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw


class SmtpSender:
    """Sends each message over its own short SMTP session.

    One connection per message keeps the sender stateless and thread-safe (two workers may share it);
    notification volume is low enough that connection reuse is not worth a pool.
    """

    def __init__(self, *, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout_s = timeout_s

    def build(self, *, to: str, subject: str, body: str, message_ref: str = "") -> EmailMessage:
        """The MIME message; headers with Chinese text are RFC 2047 encoded by the e-mail policy."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.sender.rpartition("@")[2] or "localhost"
        msg["Message-ID"] = make_msgid(idstring=message_ref or None, domain=domain)
        if message_ref:
            msg["X-Incucare-Notification"] = message_ref
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer (no mail loops)
        msg.set_content(body, charset="utf-8")
        return msg

    def send(self, *, to: str, subject: str, body: str, message_ref: str = "") -> None:
        """Deliver one message; a refused recipient (5xx) is permanent, anything else may be retried."""
        msg = self.build(to=to, subject=subject, body=body, message_ref=message_ref)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            detail = "; ".join(f"{to_addr}: {code} {_text(text)}" for to_addr, (code, text) in exc.recipients.items())
            raise DeliveryError(f"SMTP recipient refused: {detail}",
                                permanent=all(500 <= code < 600 for code in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP error {exc.smtp_code}: {_text(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port} unreachable or failed: "
                                f"{type(exc).__name__}: {exc}") from exc
