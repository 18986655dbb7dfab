"""What a pushed WeChat message does: bind a follower to a contact, or file a report, and what we answer.

The channel rules are the shared ones of ``services.inbound`` (a bound contact's message opens, joins or
threads into a ticket; anything else waits in the review queue, nothing is dropped). This module adds
what is particular to WeChat: followers bind their OpenID themselves with a command, and every message
gets a short passive reply built from what was stored, so WeChat's retries of one MsgId get the same answer.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Contact, Customer, Device, InboundMessage, Ticket
from incucare.adapters.wechat.commands import BindCommand, looks_like_bind, normalize_phone, parse_bind
from incucare.adapters.wechat.protocol import SUBSCRIBE, TEXT, PushedMessage
from incucare.domain.model import Channel, InboundStatus
from incucare.services import inbound
from incucare.services.audit import record_change

log = logging.getLogger("incucare.wechat")

MAX_DELIVERY_DELAY = timedelta(days=1)
"""A CreateTime older than this (or in the future) is not believed: the message counts as received now."""
_UNBIND = re.compile(r"^\s*(?:解绑|解除绑定|unbind)\s*$", re.IGNORECASE)

HOW_TO_BIND = ("绑定方法：发送「绑定 手机号 设备序列号」，例如：绑定 13800138000 SN12345"
               "（手机号为贵单位在我司登记的联系电话，序列号见培养箱铭牌）。\n"
               "To link this WeChat account, send: bind <phone> <serial>, e.g. bind 13800138000 SN12345 "
               "(the phone registered with us, the serial from the incubator's nameplate).")
HOW_TO_BIND_NO_SERIAL = ("绑定方法：发送「绑定 手机号」，例如：绑定 13800138000（贵单位在我司登记的联系电话）。\n"
                         "To link this WeChat account, send: bind <phone>, e.g. bind 13800138000 "
                         "(the phone registered with us).")
HOW_TO_REPORT = ("报修请直接发送故障现象和设备序列号，例如：SN12345 CO2 浓度一直报警；补充信息请带上工单号。\n"
                 "To report a fault, send what happens and the serial, e.g. \"SN12345 CO2 alarm keeps sounding\"; "
                 "quote the ticket number when adding to a report.")


def _how_to_bind(requires_serial: bool) -> str:
    return HOW_TO_BIND if requires_serial else HOW_TO_BIND_NO_SERIAL


def handle(session: Session, message: PushedMessage, *, now: datetime, raw: str = "",
           bind_requires_serial: bool = True) -> str | None:
    """Act on one pushed message and return the reply text (None: answer ``success``, nothing to say).

    The caller commits. A redelivered MsgId finds its first record and gets the same reply.
    """
    if message.is_event:
        if message.event == SUBSCRIBE:
            return welcome(inbound.find_contact(session, Channel.WECHAT, message.from_user), bind_requires_serial)
        return None
    text = message.content if message.msg_type == TEXT else ""
    if text and _UNBIND.match(unicodedata.normalize("NFKC", text)):
        return unbind(session, message.from_user, now=now)
    if text and looks_like_bind(text):
        return bind(session, message.from_user, parse_bind(text), now=now, requires_serial=bind_requires_serial)
    sent = message.created_at
    report = inbound.InboundReport(
        channel=Channel.WECHAT, external_id=message.dedupe_id, sender=message.from_user,
        received_at=sent if now - MAX_DELIVERY_DELAY <= sent <= now else now, body=message.intake_text(), raw=raw,
    )
    filed = inbound.receive(session, report, now=now)
    return reply_for(session, filed, bind_requires_serial)


def welcome(contact: Contact | None, requires_serial: bool = True) -> str:
    """The greeting on subscribe: how to report if already bound, how to bind otherwise."""
    if contact is not None:
        return f"欢迎回来，{contact.name}！Welcome back, {contact.name}!\n{HOW_TO_REPORT}"
    return ("欢迎关注 CO2 培养箱售后服务号！Welcome to the CO2 incubator service account!\n"
            f"{_how_to_bind(requires_serial)}\n绑定后即可在此报修 / once linked, report faults here.")


def reply_for(session: Session, message: InboundMessage, requires_serial: bool = True) -> str:
    """The reply to a filed message, from its stored outcome only (so every retry reads the same)."""
    ticket = session.get(Ticket, message.ticket_id) if message.ticket_id is not None else None
    status = InboundStatus(message.status)
    if ticket is not None and status is InboundStatus.TICKETED:
        serial = ticket.device.serial
        return (f"已收到报修，工单号 {ticket.number}（设备 {serial}）。一线工程师将尽快与您联系；"
                f"补充情况请回复并带上工单号。\n"
                f"Received: ticket {ticket.number} (device {serial}). Our tier-1 engineers will contact you soon; "
                f"quote the ticket number when you add details.")
    if ticket is not None and status is InboundStatus.JOINED:
        return (f"已收到。该设备的同类故障已有工单 {ticket.number} 正在处理，您的信息已并入该工单。\n"
                f"Received. This fault is already being handled in ticket {ticket.number}; "
                f"your message was added to it.")
    if ticket is not None and status is InboundStatus.THREADED:
        return (f"已收到，已补充到工单 {ticket.number}。\n"
                f"Received and added to ticket {ticket.number}.")
    if status is InboundStatus.REVIEW and message.contact_id is None:
        return ("已收到您的消息，客服会人工查看。您的微信尚未绑定联系人，绑定后报修可自动建单。\n"
                f"Received; our service desk will look at it. This WeChat account is not linked yet.\n"
                f"{_how_to_bind(requires_serial)}")
    if status is InboundStatus.REVIEW:
        return ("已收到，但未能确定是哪台设备。客服会人工处理；也可重新发送并注明设备序列号（见铭牌）。\n"
                "Received, but we could not tell which incubator it is about. Our service desk will handle it; "
                "you may also send it again with the serial from the nameplate.")
    return "已收到。\nReceived."


def bind(session: Session, openid: str, command: BindCommand | None, *, now: datetime,
         requires_serial: bool = True) -> str:
    """Bind the follower to the contact with this phone (and a device serial of its organisation).

    Only a contact not yet bound can be taken, and with ``requires_serial`` the follower must also name a
    serial from the organisation's nameplates, so knowing a phone number is not enough to act as someone.
    A failed attempt gets one answer whatever failed (no telling which phones exist). A repeated
    command from the bound follower answers as the first time did.
    """
    if command is None or (requires_serial and not command.serial):
        return f"格式不正确 / Not understood.\n{_how_to_bind(requires_serial)}"
    current = inbound.find_contact(session, Channel.WECHAT, openid)
    matches = _contacts_with_phone(session, command.phone)
    if command.serial:
        matches = [c for c in matches if _has_device(session, c.customer_id, command.serial)]
    if current is not None:
        if any(c.id == current.id for c in matches):
            return _bound(session, current)
        return (f"您的微信已绑定联系人 {current.name}；如需更换，请先发送「解绑」。\n"
                f"This WeChat account is already linked to {current.name}; send \"unbind\" first to change it.")
    if not matches:
        log.info("wechat bind refused for %s: no contact matches the phone and serial", openid)
        return ("绑定失败：手机号与设备序列号不匹配。请核对后重试，或致电客服。\n"
                "Not linked: the phone and serial do not match our records. Check them or call the service desk.\n"
                f"{_how_to_bind(requires_serial)}")
    free = [c for c in matches if not c.wechat_openid]
    if not free:
        log.warning("wechat bind refused for %s: contact %s is bound to another account", openid, matches[0].id)
        return ("该联系人已绑定其他微信账号。如需更换，请由原微信发送「解绑」，或致电客服。\n"
                "This contact is already linked to another WeChat account; unbind it there first or call the "
                "service desk.")
    if len(free) > 1:
        return ("该手机号对应多位联系人，无法自动绑定，请致电客服。\n"
                "Several contacts share this phone; please call the service desk to link your account.")
    contact = free[0]
    inbound.bind_wechat(session, inbound.contact_actor(contact), contact, openid, now=now)
    return _bound(session, contact)


def unbind(session: Session, openid: str, *, now: datetime) -> str:
    """The follower removes the link between their WeChat account and the contact (audited)."""
    contact = inbound.find_contact(session, Channel.WECHAT, openid)
    if contact is None:
        return "您的微信未绑定联系人。\nThis WeChat account is not linked to a contact."
    contact.wechat_openid = None
    record_change(session, inbound.contact_actor(contact), at=now, entity="contact", entity_id=contact.id,
                  action="unbind_wechat", changes={"wechat_openid": (openid, None)},
                  reason="unbound by the follower")
    return (f"已解除与联系人 {contact.name} 的绑定。\n"
            f"This WeChat account is no longer linked to {contact.name}.")


def _bound(session: Session, contact: Contact) -> str:
    customer = session.get(Customer, contact.customer_id)
    org = customer.name if customer is not None else ""
    return (f"已绑定：{contact.name}（{org}）。\n{HOW_TO_REPORT}\n"
            f"Linked to {contact.name} ({org}).")


def _contacts_with_phone(session: Session, phone: str) -> list[Contact]:
    """Contacts whose phone is ``phone`` once both are normalised (separators and +86 ignored)."""
    if len(phone) < 5:
        return []
    rows = session.scalars(select(Contact).where(Contact.phone.like(f"%{phone[-4:]}%"))
                           .order_by(Contact.is_primary.desc(), Contact.id).limit(200))
    return [c for c in rows if normalize_phone(c.phone) == phone]


def _has_device(session: Session, customer_id: int, serial: str) -> bool:
    found = session.scalar(select(Device.id).where(Device.customer_id == customer_id,
                                                   func.upper(Device.serial) == serial.upper()).limit(1))
    return found is not None
