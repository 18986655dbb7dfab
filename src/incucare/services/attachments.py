"""Photos and files on a ticket: what the display shows says more than a description of it.

Only image types and PDFs are accepted, recognised by their first bytes (a renamed .exe is refused
whatever it claims to be), at most ``MAX_BYTES`` each and ``MAX_PER_TICKET`` per ticket; the same file
twice on one ticket is stored once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Ticket, TicketAttachment, TicketEvent
from incucare.domain.errors import NotFound, ValidationFailed
from incucare.domain.model import Channel, EventKind
from incucare.services.audit import record_change
from incucare.services.context import Actor

MAX_BYTES = 10 * 1024 * 1024
MAX_PER_TICKET = 20
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftypheic", 4, "image/heic"),
    (b"ftypheix", 4, "image/heic"),
    (b"ftypmif1", 4, "image/heic"),
    (b"%PDF-", 0, "application/pdf"),
)


@dataclass(frozen=True)
class NewAttachment:
    """A file as it arrived: its name, the type the sender claimed and the bytes."""

    filename: str
    content_type: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The real content type from the first bytes, or None when it is not an accepted type."""
    for magic, offset, kind in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            if kind == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return kind
    return None


def check(new: NewAttachment) -> str:
    """The accepted content type of ``new``, or a ValidationFailed naming the file and the problem."""
    name = new.filename or "file"
    if not new.data:
        raise ValidationFailed(f"{name}: the file is empty", zh=f"{name}:文件为空")
    if len(new.data) > MAX_BYTES:
        raise ValidationFailed(f"{name}: larger than {MAX_BYTES // (1024 * 1024)} MB",
                               zh=f"{name}:文件超过 {MAX_BYTES // (1024 * 1024)} MB")
    kind = sniff(new.data)
    if kind is None:
        raise ValidationFailed(f"{name}: only photos (JPEG, PNG, GIF, WebP, HEIC) and PDF files are accepted",
                               zh=f"{name}:只接受照片(JPEG、PNG、GIF、WebP、HEIC)和 PDF 文件")
    return kind


def add_attachments(session: Session, actor: Actor, ticket: Ticket, files: list[NewAttachment], *,
                    channel: Channel, now: datetime) -> list[TicketAttachment]:
    """Store ``files`` on the ticket after checking all of them (one bad file refuses the lot)."""
    if not files:
        return []
    kinds = [check(f) for f in files]
    existing = session.scalars(select(TicketAttachment.sha256).where(TicketAttachment.ticket_id == ticket.id)).all()
    count = int(session.scalar(select(func.count()).select_from(TicketAttachment)
                               .where(TicketAttachment.ticket_id == ticket.id)) or 0)
    stored: list[TicketAttachment] = []
    seen = set(existing)
    for new, kind in zip(files, kinds, strict=True):
        digest = hashlib.sha256(new.data).hexdigest()
        if digest in seen:
            continue
        if count + len(stored) >= MAX_PER_TICKET:
            raise ValidationFailed(f"a ticket holds at most {MAX_PER_TICKET} attachments",
                                   zh=f"每个工单最多 {MAX_PER_TICKET} 个附件")
        seen.add(digest)
        name = (new.filename or "photo").replace("/", "_").replace("\\", "_").strip()[:255] or "photo"
        attachment = TicketAttachment(ticket_id=ticket.id, filename=name, content_type=kind, size=len(new.data),
                                      sha256=digest, data=new.data, channel=channel.value,
                                      uploaded_by_id=actor.user_id, uploaded_at=now)
        session.add(attachment)
        stored.append(attachment)
    if stored:
        session.flush()
        names = ", ".join(a.filename for a in stored)
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor_id=actor.user_id, actor_name=actor.name,
                                kind=EventKind.ATTACHMENT_ADDED.value, old_value=None,
                                new_value=",".join(str(a.id) for a in stored), note=names))
        record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="attach",
                      changes={"attachments": (None, names)})
    return stored


def list_attachments(session: Session, ticket: Ticket) -> list[TicketAttachment]:
    """The ticket's attachments, oldest first (the caller has already checked the ticket is visible)."""
    return list(session.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)
                                .order_by(TicketAttachment.id)))


def get_attachment(session: Session, ticket: Ticket, attachment_id: int) -> TicketAttachment:
    """One attachment of a visible ticket (another ticket's id is a 404, never a leak)."""
    attachment = session.get(TicketAttachment, attachment_id)
    if attachment is None or attachment.ticket_id != ticket.id:
        raise NotFound(f"attachment {attachment_id} not found on this ticket", zh=f"该工单没有附件 {attachment_id}")
    return attachment
