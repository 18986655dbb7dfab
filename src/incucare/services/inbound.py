"""Messages from the outside world (e-mail, WeChat) become tickets, join tickets, or wait for a person.

Every channel adapter turns what it received into an ``InboundReport`` and calls ``receive``; the rules
are the same for all: the sender is looked up among customer contacts, a ticket number in the text
threads the message into that ticket, a serial number (or the customer's only device) opens or joins a
ticket, and anything we cannot place goes to the review queue with the reason. Nothing is dropped, and a
redelivered message (same channel and message id) is recognised and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db.tables import Contact, Device, InboundMessage, Ticket
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.intake import serial_candidates, ticket_numbers
from incucare.domain.model import Channel, InboundStatus, Role
from incucare.services import tickets
from incucare.services.attachments import NewAttachment, add_attachments
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.paging import Page, paginate

REVIEWERS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.AGENT, Role.HQ_EXPERT})
"""Who works the review queue (the tier-1 desk and its managers)."""
MAX_BODY = 9_000
"""Longer texts are cut for the ticket description (the whole message stays in the inbound record)."""


@dataclass(frozen=True)
class InboundReport:
    """One received message, channel-neutral."""

    channel: Channel
    external_id: str
    sender: str
    received_at: datetime
    body: str
    subject: str = ""
    sender_name: str = ""
    raw: str = ""
    attachments: tuple[NewAttachment, ...] = field(default_factory=tuple)


def contact_actor(contact: Contact) -> Actor:
    """A contact acting through a channel: a customer of its organisation, without a login of its own."""
    return Actor(user_id=None, name=contact.name, role=Role.CUSTOMER, customer_id=contact.customer_id)


def find_contact(session: Session, channel: Channel, sender: str) -> Contact | None:
    """The contact behind an e-mail address (case-insensitive) or a WeChat OpenID."""
    sender = sender.strip()
    if not sender:
        return None
    if channel is Channel.WECHAT:
        return session.scalar(select(Contact).where(Contact.wechat_openid == sender))
    return session.scalar(select(Contact).where(func.lower(Contact.email) == sender.lower())
                          .order_by(Contact.is_primary.desc(), Contact.id).limit(1))


def receive(session: Session, report: InboundReport, *, now: datetime) -> InboundMessage:
    """File one received message; a redelivery of the same message returns the first record unchanged."""
    existing = _existing(session, report)
    if existing is not None:
        return existing
    message = InboundMessage(
        channel=report.channel.value, external_id=report.external_id[:255], sender=report.sender.strip()[:255],
        sender_name=report.sender_name.strip()[:128], subject=report.subject.strip()[:500], body=report.body,
        raw=report.raw, received_at=report.received_at, status=InboundStatus.REVIEW.value,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # the same message delivered twice at the same moment: the first one files it
        found = _existing(session, report)
        if found is None:
            raise
        return found
    contact = find_contact(session, report.channel, report.sender)
    if contact is None:
        _to_review(message, "unknown sender: no contact has this address", "未知发件人:没有联系人使用该地址")
        return message
    message.contact_id, message.customer_id = contact.id, contact.customer_id
    actor = contact_actor(contact)
    text = f"{report.subject}\n{report.body}".strip()
    thread = _thread_target(session, actor, text)
    if thread is not None:
        tickets.add_customer_message(session, actor, thread, now=now, channel=report.channel, text=_text(report))
        add_attachments(session, actor, thread, list(report.attachments), channel=report.channel, now=now)
        message.ticket_id, message.status = thread.id, InboundStatus.THREADED.value
        return message
    device = _device_for(session, contact.customer_id, text)
    if device is None:
        _to_review(message, "no serial number of this customer's devices in the message, and it has several",
                   "邮件/消息中没有该客户设备的序列号,且该客户有多台设备")
        return message
    opened = tickets.open_ticket(
        session, actor, now=now, device_serial=device.serial, description=_text(report), channel=report.channel,
        reported_at=min(report.received_at, now), reporter_name=report.sender_name or contact.name,
        reporter_phone=contact.phone, reporter_email=contact.email,
        idempotency_key=f"{report.channel.value}:{report.external_id}"[:120],
    )
    add_attachments(session, actor, opened.ticket, list(report.attachments), channel=report.channel, now=now)
    message.ticket_id = opened.ticket.id
    message.status = (InboundStatus.JOINED if opened.joined else InboundStatus.TICKETED).value
    return message


def _existing(session: Session, report: InboundReport) -> InboundMessage | None:
    return session.scalar(select(InboundMessage).where(InboundMessage.channel == report.channel.value,
                                                       InboundMessage.external_id == report.external_id[:255]))


def _to_review(message: InboundMessage, en: str, zh: str) -> None:
    message.status = InboundStatus.REVIEW.value
    message.reason = f"{zh} / {en}"


def _text(report: InboundReport) -> str:
    text = "\n".join(part for part in (report.subject.strip(), report.body.strip()) if part)
    return (text[:MAX_BODY] + " …") if len(text) > MAX_BODY else text or "(空消息 / empty message)"


def _thread_target(session: Session, actor: Actor, text: str) -> Ticket | None:
    """The first ticket number in the text that belongs to the sender's organisation."""
    for number in ticket_numbers(text):
        try:
            return tickets.get_ticket_by_number(session, actor, number)
        except NotFound:
            continue
    return None


def _device_for(session: Session, customer_id: int, text: str) -> Device | None:
    """A serial of the customer's devices named in the text, or the customer's only device."""
    candidates = serial_candidates(text)
    if candidates:
        device = session.scalar(select(Device).where(Device.customer_id == customer_id,
                                                     func.upper(Device.serial).in_(candidates)).limit(1))
        if device is not None:
            return device
    only = session.scalars(select(Device).where(Device.customer_id == customer_id).limit(2)).all()
    return only[0] if len(only) == 1 else None


def _reviewer(actor: Actor) -> None:
    if actor.role not in REVIEWERS:
        raise PermissionDenied("only the tier-1 desk and managers work the intake review queue",
                               zh="只有一线客服和经理可以处理待审核来信")


def list_messages(session: Session, actor: Actor, *, status: InboundStatus | None = InboundStatus.REVIEW,
                  channel: Channel | None = None, q: str | None = None, limit: int = 50,
                  offset: int = 0) -> Page[InboundMessage]:
    """The review queue (oldest first, so nobody waits longest), or all messages of a status or channel."""
    _reviewer(actor)
    query = select(InboundMessage).options(joinedload(InboundMessage.ticket), joinedload(InboundMessage.contact))
    if status is not None:
        query = query.where(InboundMessage.status == status.value)
    if channel is not None:
        query = query.where(InboundMessage.channel == channel.value)
    if q:
        like = f"%{q.strip()}%"
        query = query.where(or_(InboundMessage.sender.ilike(like), InboundMessage.subject.ilike(like),
                                InboundMessage.body.ilike(like)))
    return paginate(session, query.order_by(InboundMessage.received_at, InboundMessage.id), limit=limit,
                    offset=offset)


def get_message(session: Session, actor: Actor, message_id: int, *, for_update: bool = False) -> InboundMessage:
    """One inbound message for a reviewer."""
    _reviewer(actor)
    query = select(InboundMessage).where(InboundMessage.id == message_id)
    message = session.scalar(query.with_for_update() if for_update else query)
    if message is None:
        raise NotFound(f"inbound message {message_id} not found", zh=f"来信 {message_id} 不存在")
    return message


def _pending(message: InboundMessage) -> None:
    if message.status != InboundStatus.REVIEW.value:
        raise Conflict(f"this message was already handled ({message.status})",
                       zh=f"该来信已处理({InboundStatus(message.status).zh})")


def file_message(session: Session, actor: Actor, message_id: int, *, now: datetime, device_serial: str | None = None,
                 ticket_number: str | None = None, contact_id: int | None = None) -> InboundMessage:
    """A reviewer places a waiting message: on an existing ticket, or as a report on a device.

    With ``contact_id`` the sender's address (or OpenID) is remembered on that contact, so the next
    message from them files itself.
    """
    message = get_message(session, actor, message_id, for_update=True)
    _pending(message)
    if not device_serial and not ticket_number:
        raise ValidationFailed("give a device serial or a ticket number", zh="请填写设备序列号或工单号",
                               details=[{"field": "device_serial", "message": "required"}])
    channel = Channel(message.channel)
    text = "\n".join(p for p in (message.subject, message.body) if p.strip()) or "(空消息 / empty message)"
    if ticket_number:
        ticket = tickets.get_ticket_by_number(session, actor, ticket_number.strip())
        tickets.add_customer_message(session, actor, ticket, now=now, channel=channel,
                                     text=f"{message.sender_name or message.sender}: {text[:MAX_BODY]}")
        message.status = InboundStatus.THREADED.value
    else:
        assert device_serial is not None
        opened = tickets.open_ticket(
            session, actor, now=now, device_serial=device_serial, description=text[:MAX_BODY], channel=channel,
            reported_at=min(message.received_at, now), reporter_name=message.sender_name or message.sender,
            reporter_email=message.sender if channel is Channel.EMAIL else "",
        )
        ticket = opened.ticket
        message.status = (InboundStatus.JOINED if opened.joined else InboundStatus.TICKETED).value
    message.ticket_id, message.customer_id = ticket.id, ticket.customer_id
    if contact_id is not None:
        _remember_sender(session, actor, message, contact_id, now, customer_id=ticket.customer_id)
    message.handled_by_id, message.handled_at = actor.user_id, now
    record_change(session, actor, at=now, entity="inbound_message", entity_id=message.id, action="file",
                  changes={"status": (InboundStatus.REVIEW.value, message.status), "ticket": (None, ticket.number)})
    return message


def discard_message(session: Session, actor: Actor, message_id: int, *, now: datetime, reason: str) -> InboundMessage:
    """A reviewer sets aside spam or a message that needs no ticket; the reason is required and audited."""
    message = get_message(session, actor, message_id, for_update=True)
    _pending(message)
    if not reason.strip():
        raise ValidationFailed("say why the message is discarded", zh="请填写丢弃原因",
                               details=[{"field": "reason", "message": "required"}])
    message.status = InboundStatus.DISCARDED.value
    message.reason = f"{message.reason}\n{actor.name}: {reason.strip()}".strip()
    message.handled_by_id, message.handled_at = actor.user_id, now
    record_change(session, actor, at=now, entity="inbound_message", entity_id=message.id, action="discard",
                  changes={"status": (InboundStatus.REVIEW.value, InboundStatus.DISCARDED.value)},
                  reason=reason.strip())
    return message


def _remember_sender(session: Session, actor: Actor, message: InboundMessage, contact_id: int,
                     now: datetime, *, customer_id: int) -> None:
    """Remember the sender on a contact of the customer the message was filed for (never another's)."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found", zh=f"联系人 {contact_id} 不存在")
    if contact.customer_id != customer_id:
        raise ValidationFailed("the contact to remember the sender on belongs to another customer",
                               zh="用于记住发件人的联系人不属于该工单的客户",
                               details=[{"field": "contact_id", "message": "another customer's contact"}])
    if message.channel == Channel.WECHAT.value:
        bind_wechat(session, actor, contact, message.sender, now=now)
        return
    if not contact.email:
        old = contact.email
        contact.email = message.sender
        record_change(session, actor, at=now, entity="contact", entity_id=contact.id, action="update",
                      changes={"email": (old, message.sender)}, reason="learned from the intake review queue")
    message.contact_id = contact.id


def bind_wechat(session: Session, actor: Actor, contact: Contact, openid: str, *, now: datetime) -> None:
    """Bind a WeChat follower (OpenID) to a contact, so their messages file themselves as that contact."""
    openid = openid.strip()
    if not openid or len(openid) > 64:
        raise ValidationFailed("a WeChat OpenID has 1 to 64 characters", zh="微信 OpenID 长度应为 1 到 64 个字符")
    holder = session.scalar(select(Contact).where(Contact.wechat_openid == openid))
    if holder is not None and holder.id != contact.id:
        raise Conflict(f"this WeChat account is already bound to contact {holder.name}",
                       zh=f"该微信账号已绑定联系人 {holder.name}")
    old = contact.wechat_openid
    contact.wechat_openid = openid
    record_change(session, actor, at=now, entity="contact", entity_id=contact.id, action="bind_wechat",
                  changes={"wechat_openid": (old, openid)})

