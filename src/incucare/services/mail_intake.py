"""E-mail intake: one received mail becomes one inbound record, and through it a ticket, a thread entry or a
review-queue entry; known senders get an acknowledgement with the ticket number.

Decisions, and why:

* **One transaction per mail.** ``ingest_mail`` commits the record, the ticket and the acknowledgement
  together, so the SMTP listener answers 250 only when all of it is durable (and 451 otherwise, so the
  sending server keeps the mail and tries again). A redelivery (same Message-ID) changes nothing.
* **Acknowledgements only to known contacts**, and only when a ticket was opened or joined: the mail says
  "[T2026-000123] received", in Chinese and English, so the customer's reply threads into the ticket.
  Replies that thread get no acknowledgement (a conversation is not a new report). Unknown senders get
  nothing at all: spam forges sender addresses, and an automatic "received" to a forged address is
  backscatter; a reviewer who files such a mail and links the sender to a contact triggers the
  acknowledgement then. At most ``ACK_LIMIT`` acknowledgements go to one address per ``ACK_WINDOW``, so an
  auto-responder that strips every header still cannot start a mail loop.
* **Loop guard.** Mail we must never answer is recorded but never ticketed: our own outgoing mail coming
  back, bounces and delivery reports (empty envelope sender, ``multipart/report``), automatic replies
  (``Auto-Submitted: auto-replied``, ``X-Autoreply``, out-of-office subjects such as 自动回复 that Chinese
  mail services send without any header), bulk and list mail (``Precedence: bulk/junk/list``,
  ``List-Id``). These are stored as *discarded* with the reason: nothing is lost (the raw mail is kept and
  listable with ``status=discarded``), yet the review queue is not flooded with out-of-office notes.
  Other machine-generated mail (``Auto-Submitted: auto-generated``, e.g. a lab's monitoring system) may
  be a real fault report, so it waits in the *review* queue for a person, and is never acknowledged.
* **Nothing is dropped on a refusal.** When a business rule refuses the mail (a ticket already holds the
  maximum number of attachments, say) the mail is filed again without its attachments (they stay in the
  raw message), and if that is refused too it goes to the review queue with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from incucare.adapters.db.tables import Contact, Device, InboundMessage, Notification, Ticket
from incucare.adapters.db.uow import UnitOfWork
from incucare.adapters.mail.parse import ParsedMail, parse_mail
from incucare.config import Settings
from incucare.domain.errors import DomainError, ValidationFailed
from incucare.domain.intake import serial_candidates
from incucare.domain.model import Channel, InboundStatus
from incucare.services import inbound
from incucare.services.attachments import add_attachments
from incucare.services.context import Actor
from incucare.services.notification_templates import TEMPLATES, Template
from incucare.services.notifications import enqueue

__all__ = [
    "ACK_LIMIT",
    "ACK_TEMPLATE",
    "ACK_WINDOW",
    "Held",
    "MailResult",
    "ReviewHints",
    "acknowledge",
    "file_message",
    "ingest_mail",
    "ingest_parsed",
    "loop_guard",
    "own_addresses",
    "review_hints",
]

ACK_TEMPLATE = "mail_acknowledged"
ACK_LIMIT = 5
"""Acknowledgements one address may receive per ``ACK_WINDOW``: a cap on any loop nobody foresaw."""
ACK_WINDOW = timedelta(hours=24)
HANDLED = (InboundStatus.TICKETED.value, InboundStatus.JOINED.value)
PUBLIC_MAIL_DOMAINS = frozenset({
    "qq.com", "vip.qq.com", "foxmail.com", "163.com", "vip.163.com", "126.com", "yeah.net", "sina.com",
    "sina.cn", "sohu.com", "aliyun.com", "139.com", "189.cn", "gmail.com", "outlook.com", "hotmail.com",
    "live.com", "msn.com", "yahoo.com", "icloud.com", "me.com",
})
"""Domains shared by millions: a sender there says nothing about which customer they belong to."""

_ACK_ZH = Template(
    subject="[{number}] 已收到您的报修 / We have received your report",
    body="{name}，您好：\n\n"
         "我们已收到您关于设备 {serial} 的报修邮件，工单号 {number}。{outcome_zh}\n"
         "客服将在服务协议约定的时限内与您联系。回复本邮件时请保留主题中的 [{number}]，"
         "您补充的信息和照片会自动归入该工单。\n\n"
         "Hello {name},\n\n"
         "We have received your e-mail about device {serial}; your ticket number is {number}.{outcome_en}\n"
         "Our service desk will contact you within the response time of your service agreement. When you reply, "
         "keep [{number}] in the subject so that what you add (text and photos) joins the ticket.\n\n"
         "—— 此邮件由系统自动发送 / This message was sent automatically.",
)
_ACK_EN = Template(
    subject="[{number}] We have received your report",
    body="Hello {name},\n\n"
         "We have received your e-mail about device {serial}; your ticket number is {number}.{outcome_en}\n"
         "Our service desk will contact you within the response time of your service agreement. When you reply, "
         "keep [{number}] in the subject so that what you add (text and photos) joins the ticket.\n\n"
         "-- This message was sent automatically.{outcome_zh:.0}",
)
"""English only, for callers that pick ``lang="en"``; acknowledgements go out in the bilingual zh version.
``{outcome_zh:.0}`` prints nothing: it is there because both languages of a template must name the same fields."""
# The outbox renders templates from one table; the acknowledgement lives beside the rules that send it.
TEMPLATES.setdefault(ACK_TEMPLATE, {"zh": _ACK_ZH, "en": _ACK_EN})

_OUTCOME = {
    InboundStatus.TICKETED.value: ("", ""),
    InboundStatus.JOINED.value: ("该设备已有同一故障的未结工单，您的报修已并入该工单。",
                                 " The device already had an open ticket for this fault; your report was added to it."),
}
_AUTO_SUBJECT = (
    "自动回复", "自动答复", "自动应答", "系统退信", "退信", "automatic reply", "auto reply", "auto-reply",
    "autoreply", "auto response", "out of office", "out of the office", "undeliverable", "undelivered mail",
    "delivery status notification", "mail delivery failed", "returned mail", "delivery failure",
)


@dataclass(frozen=True)
class Held:
    """Why the loop guard keeps a mail away from tickets, and where it goes (discarded or review)."""

    status: Literal["discarded", "review"]
    en: str
    zh: str


@dataclass(frozen=True)
class MailResult:
    """What became of one mail, with plain values (safe to use after the transaction closed)."""

    message_id: int
    status: str
    created: bool
    ticket_id: int | None = None
    ticket_number: str | None = None
    acknowledged: bool = False
    reason: str = ""


@dataclass(frozen=True)
class ReviewHints:
    """What a reviewer may want to file a waiting message onto: devices named in it, plausible contacts."""

    devices: list[Device]
    contacts: list[Contact]


def own_addresses(settings: Settings) -> frozenset[str]:
    """Our own sender addresses (``INCUCARE_SMTP_FROM``), lower-cased: mail from them is never filed."""
    address = parseaddr(settings.smtp_from)[1].strip().lower()
    return frozenset({address} if address else set())


def loop_guard(parsed: ParsedMail, own: frozenset[str] = frozenset()) -> Held | None:
    """Whether a mail must not be ticketed (and so never answered), and why; None for a normal mail."""
    sender = parsed.report.sender.strip().lower()
    if (sender and sender in own) or parsed.has_header("x-incucare-notification"):
        return Held("discarded", "our own outgoing mail came back", "本系统自己发出的邮件被退回或转回")
    if parsed.has_header("return-path") and parsed.header("return-path").strip("<> ") == "":
        return Held("discarded", "bounce or delivery report (empty envelope sender)", "退信或投递报告(空信封发件人)")
    if parsed.content_type == "multipart/report":
        return Held("discarded", "delivery or read report", "投递报告或已读回执")
    auto = parsed.header("auto-submitted").split(";", 1)[0].strip().lower()
    if auto == "auto-replied" or any(parsed.has_header(h) for h in ("x-autoreply", "x-autorespond")):
        return Held("discarded", "automatic reply (Auto-Submitted: auto-replied)",
                    "自动回复邮件(Auto-Submitted: auto-replied)")
    precedence = parsed.header("precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return Held("discarded", f"bulk or list mail (Precedence: {precedence})",
                    f"群发或邮件列表邮件(Precedence: {precedence})")
    if parsed.has_header("list-id"):
        return Held("discarded", "mailing-list mail (List-Id)", "邮件列表邮件(List-Id)")
    subject = parsed.report.subject.strip().lower()
    if subject.startswith(_AUTO_SUBJECT):
        return Held("discarded", "automatic reply or bounce (by its subject)", "自动回复或退信(根据邮件主题)")
    if auto and auto != "no":
        return Held("review", f"automatically generated mail (Auto-Submitted: {auto}): a person decides, "
                              "no acknowledgement is sent",
                    f"自动生成的邮件(Auto-Submitted: {auto}):需人工判断,不发送自动确认")
    return None


def _suppresses_ack(parsed: ParsedMail) -> bool:
    """The sender asked for no automatic answers (Exchange's ``X-Auto-Response-Suppress``)."""
    wanted = {item.strip().lower() for item in parsed.header("x-auto-response-suppress").split(",")}
    return bool(wanted & {"all", "autoreply", "oof"})


def _existing(session: Session, channel: Channel, external_id: str) -> InboundMessage | None:
    return session.scalar(select(InboundMessage).where(InboundMessage.channel == channel.value,
                                                       InboundMessage.external_id == external_id[:255]))


def _result(message: InboundMessage, *, created: bool, acknowledged: bool = False) -> MailResult:
    ticket = message.ticket
    return MailResult(message_id=message.id, status=message.status, created=created, ticket_id=message.ticket_id,
                      ticket_number=ticket.number if ticket is not None else None, acknowledged=acknowledged,
                      reason=message.reason)


def _hold(session: Session, parsed: ParsedMail, held: Held, *, now: datetime) -> InboundMessage:
    """Record a mail the guard keeps from tickets (or one the rules refused), with the reason."""
    report = parsed.report
    message = InboundMessage(
        channel=report.channel.value, external_id=report.external_id[:255], sender=report.sender.strip()[:255],
        sender_name=report.sender_name.strip()[:128], subject=report.subject.strip()[:500], body=report.body,
        raw=report.raw, received_at=report.received_at, status=held.status, reason=f"{held.zh} / {held.en}",
        handled_at=now if held.status == InboundStatus.DISCARDED.value else None,
    )
    contact = inbound.find_contact(session, report.channel, report.sender)
    if contact is not None:
        message.contact_id, message.customer_id = contact.id, contact.customer_id
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        found = _existing(session, report.channel, report.external_id)
        if found is None:
            raise
        return found
    return message


def acknowledge(session: Session, message: InboundMessage, *, now: datetime) -> Notification | None:
    """Queue the bilingual "[T…] received" mail for a message that opened or joined a ticket.

    Returns None (and queues nothing) for anything but an e-mail that opened or joined a ticket, for a
    sender without a usable address, and once the address had ``ACK_LIMIT`` acknowledgements in the last
    ``ACK_WINDOW``. The dedupe key is the message, so a retried transaction never queues a second one.
    """
    address = message.sender.strip()
    if message.channel != Channel.EMAIL.value or message.status not in HANDLED or message.ticket_id is None:
        return None
    if "@" not in address or any(ch in address for ch in "\r\n,;<>"):
        return None
    recent = session.scalar(select(func.count()).select_from(Notification).where(
        Notification.template == ACK_TEMPLATE, func.lower(Notification.recipient) == address.lower(),
        Notification.created_at >= now - ACK_WINDOW)) or 0
    if recent >= ACK_LIMIT:
        return None
    ticket = session.scalar(select(Ticket).options(joinedload(Ticket.device)).where(Ticket.id == message.ticket_id))
    assert ticket is not None
    contact = session.get(Contact, message.contact_id) if message.contact_id is not None else None
    name = (contact.name if contact is not None else "") or message.sender_name or address
    outcome_zh, outcome_en = _OUTCOME[message.status]
    return enqueue(session, now=now, template=ACK_TEMPLATE, channel="email", recipient=address,
                   context={"number": ticket.number, "serial": ticket.device.serial, "name": name,
                            "outcome_zh": outcome_zh, "outcome_en": outcome_en},
                   lang="zh", ticket_id=ticket.id,
                   # only useful at once: quiet hours protect staff inboxes, not a customer waiting for a number
                   critical=True, dedupe_key=f"mail-ack:{message.id}")


def ingest_parsed(session: Session, parsed: ParsedMail, *, now: datetime,
                  own: frozenset[str] = frozenset()) -> MailResult:
    """File one parsed mail in the caller's transaction (never commits); see the module notes."""
    report = parsed.report
    existing = _existing(session, report.channel, report.external_id)
    if existing is not None:
        return _result(existing, created=False)
    held = loop_guard(parsed, own)
    if held is not None:
        return _result(_hold(session, parsed, held, now=now), created=True)
    message = inbound.receive(session, report, now=now)
    acknowledged = False
    if message.status in HANDLED and not _suppresses_ack(parsed):
        acknowledged = acknowledge(session, message, now=now) is not None
    session.flush()
    return _result(message, created=True, acknowledged=acknowledged)


def _without_attachments(parsed: ParsedMail, problem: DomainError) -> ParsedMail:
    names = "、".join(a.filename for a in parsed.report.attachments)
    note = (f"[附件未能存入工单({problem.zh}),原件保留在来信中:{names} / attachments not stored on the ticket "
            f"({problem.message}); they stay in the original mail: {names}]")
    report = replace(parsed.report, attachments=(), body=f"{parsed.report.body}\n\n{note}".strip())
    return replace(parsed, report=report)


def ingest_mail(session_factory: sessionmaker[Session], raw: bytes, *, now: datetime,
                own: frozenset[str] = frozenset()) -> MailResult:
    """Parse and file one raw e-mail in its own transaction, committed before this returns.

    A business-rule refusal never loses the mail: it is filed again without attachments, and failing that
    it waits in the review queue with the reason. Database errors propagate (the caller answers "try again").
    """
    parsed = parse_mail(raw, now=now)
    try:
        return _commit(session_factory, parsed, now=now, own=own)
    except DomainError as exc:
        problem = exc
    if parsed.report.attachments:
        try:
            return _commit(session_factory, _without_attachments(parsed, problem), now=now, own=own)
        except DomainError as exc:
            problem = exc
    held = Held("review", f"could not be filed automatically: {problem.message}", f"无法自动归档:{problem.zh}")
    with UnitOfWork(session_factory) as uow:
        message = _hold(uow.session, parsed, held, now=now)
        uow.session.flush()
        result = _result(message, created=True)
        uow.commit()
        return result


def _commit(session_factory: sessionmaker[Session], parsed: ParsedMail, *, now: datetime,
            own: frozenset[str]) -> MailResult:
    with UnitOfWork(session_factory) as uow:
        result = ingest_parsed(uow.session, parsed, now=now, own=own)
        uow.commit()
        return result


def file_message(session: Session, actor: Actor, message_id: int, *, now: datetime, device_serial: str | None = None,
                 ticket_number: str | None = None, contact_id: int | None = None) -> InboundMessage:
    """A reviewer files a waiting message (any channel); for e-mail the photos in it follow onto the ticket.

    On top of ``inbound.file_message``: a contact to remember the sender on must belong to the customer
    the message was filed for, and an e-mail whose sender was thereby vouched for gets the acknowledgement
    a known contact would have had.
    """
    message = inbound.file_message(session, actor, message_id, now=now, device_serial=device_serial,
                                   ticket_number=ticket_number, contact_id=contact_id)
    session.flush()
    session.expire(message, ["ticket", "contact", "customer"])  # the ids changed; relationships follow them
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
        if contact is None or contact.customer_id != message.customer_id:
            raise ValidationFailed("the contact to remember the sender on belongs to another customer",
                                   zh="用于记住发件人的联系人不属于该工单的客户",
                                   details=[{"field": "contact_id", "message": "another customer's contact"}])
    ticket = session.get(Ticket, message.ticket_id) if message.ticket_id is not None else None
    if message.channel != Channel.EMAIL.value or ticket is None:
        return message
    if message.raw:
        files = list(parse_mail(message.raw.encode("utf-8", "replace"), now=now).report.attachments)
        try:
            with session.begin_nested():
                add_attachments(session, actor, ticket, files, channel=Channel.EMAIL, now=now)
        except ValidationFailed:
            pass  # the ticket is full: the photos stay in the original mail, which the reviewer can read
    if contact_id is not None:
        acknowledge(session, message, now=now)
    return message


def review_hints(session: Session, message: InboundMessage, *, limit: int = 10) -> ReviewHints:
    """Devices whose serial the message names (any customer) and contacts of the customers behind them or
    of the sender's organisation (same mail domain, unless a public mail service)."""
    candidates = serial_candidates(f"{message.subject}\n{message.body}")
    devices: list[Device] = []
    if candidates:
        devices = list(session.scalars(select(Device).options(joinedload(Device.customer))
                                       .where(func.upper(Device.serial).in_(candidates[:200]))
                                       .order_by(Device.serial).limit(limit)))
    customer_ids = {d.customer_id for d in devices}
    domain = message.sender.rpartition("@")[2].strip().lower() if message.channel == Channel.EMAIL.value else ""
    conditions = []
    if customer_ids:
        conditions.append(Contact.customer_id.in_(customer_ids))
    if domain and domain not in PUBLIC_MAIL_DOMAINS:
        same_domain = select(Contact.customer_id).where(func.lower(Contact.email).endswith(f"@{domain}",
                                                                                            autoescape=True))
        conditions.append(Contact.customer_id.in_(same_domain))
    contacts: list[Contact] = []
    if conditions:
        contacts = list(session.scalars(select(Contact).options(joinedload(Contact.customer)).where(or_(*conditions))
                                        .order_by(Contact.customer_id, Contact.name).limit(limit * 3)))
    return ReviewHints(devices=devices, contacts=contacts)
