"""Notification texts in zh-CN and English, rendered with ``str.format`` fields from a context.

Templates live in code, beside the rules that send them, so a new template cannot ship without both
languages (a unit test walks the table) and a caller that forgets a field fails when the message is
queued, in its own transaction and test, not hours later in the delivery worker.

Fields each template needs (the same in both languages; see ``required_fields``)::

    sla_warning      number clock_label percent due_at owner customer device url
    sla_breach       number clock_label due_at owner customer device url
    escalated        number tier owner reason customer device url
    handoff_offered  number owner reason due_at customer device url
    handoff_expired  number owner receiver due_at customer device url
    ticket_assigned  number tier customer device url
    dispatch_offered number owner reason due_at customer device url
    dispatch_failed  number receiver reason customer device url
    stock_low        count lines url
    alarm_escalated  customer device alarm since message severity step url
    survey_invite    number device url expires_at

Context values may be plain values, aware datetimes (shown in Beijing time), objects with a
``label(lang)`` method (``LabelledEnum``, ``Tier``) or a ``{"zh": ..., "en": ...}`` mapping; the last
two render in the message's language, so one context serves recipients of either language.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from incucare.domain.errors import ValidationFailed

LANGUAGES = ("zh", "en")
DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")
SUBJECT_MAX = 255
"""The width of ``notifications.subject``; longer subjects are cut with an ellipsis."""


class TemplateError(ValidationFailed):
    """A template that does not exist, a language we do not write, or a context lacking a field."""

    code = "template_error"


@dataclass(frozen=True)
class Template:
    """One message in one language: a subject line and a plain-text body (Markdown-safe for robots)."""

    subject: str
    body: str


@dataclass(frozen=True)
class Rendered:
    """A template filled in: what the outbox stores and the channels send."""

    template: str
    lang: str
    subject: str
    body: str


_FOOTER_ZH = "客户：{customer}\n设备：{device}\n查看工单：{url}"
_FOOTER_EN = "Customer: {customer}\nDevice: {device}\nOpen the ticket: {url}"

TEMPLATES: dict[str, dict[str, Template]] = {
    "sla_warning": {
        "zh": Template(
            subject="【SLA预警】工单 {number} {clock_label}已用 {percent}%",
            body="工单 {number} 的{clock_label}时限已用 {percent}%，截止时间 {due_at}。\n"
                 "当前负责人：{owner}\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[SLA warning] Ticket {number}: {clock_label} {percent}% used",
            body="Ticket {number} has used {percent}% of its {clock_label} target, due {due_at}.\n"
                 "Owner: {owner}\n" + _FOOTER_EN,
        ),
    },
    "sla_breach": {
        "zh": Template(
            subject="【SLA超时】工单 {number} {clock_label}已超时",
            body="工单 {number} 的{clock_label}已超过截止时间 {due_at}。\n当前负责人：{owner}\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[SLA breached] Ticket {number}: {clock_label} missed",
            body="Ticket {number} missed its {clock_label} deadline of {due_at}.\nOwner: {owner}\n" + _FOOTER_EN,
        ),
    },
    "escalated": {
        "zh": Template(
            subject="【工单升级】工单 {number} 已升级至{tier}",
            body="工单 {number} 已升级至{tier}，新的负责人：{owner}。\n升级原因：{reason}\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[Escalated] Ticket {number} is now at {tier}",
            body="Ticket {number} was escalated to {tier}; the accountable owner is now {owner}.\n"
                 "Reason: {reason}\n" + _FOOTER_EN,
        ),
    },
    "handoff_offered": {
        "zh": Template(
            subject="【待接收】{owner} 向您转交工单 {number}",
            body="{owner} 希望将工单 {number} 转交给您，请在 {due_at} 前接收或拒绝；"
                 "接收前工单仍由 {owner} 负责。\n转交原因：{reason}\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[Hand-off] {owner} offers you ticket {number}",
            body="{owner} offers you ticket {number}. Accept or decline by {due_at}; until you accept, "
                 "{owner} stays accountable.\nReason: {reason}\n" + _FOOTER_EN,
        ),
    },
    "handoff_expired": {
        "zh": Template(
            subject="【转交未接收】工单 {number} 的转交已超时",
            body="{owner} 转交给 {receiver} 的工单 {number} 在 {due_at} 前未被接收，已提交给您处理；"
                 "在此之前工单仍由 {owner} 负责。\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[Hand-off not accepted] Ticket {number}",
            body="{receiver} did not accept ticket {number} from {owner} by {due_at}, so it comes to you; "
                 "{owner} stays accountable meanwhile.\n" + _FOOTER_EN,
        ),
    },
    "ticket_assigned": {
        "zh": Template(
            subject="【新工单】工单 {number} 已分配给您",
            body="工单 {number}（{tier}）已分配给您，您现在是该工单的负责人。\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[Assigned] Ticket {number} is yours",
            body="Ticket {number} ({tier}) was assigned to you; you are now its accountable owner.\n" + _FOOTER_EN,
        ),
    },
    "dispatch_offered": {
        "zh": Template(
            subject="【派工】工单 {number} 请在 {due_at} 前接单",
            body="{owner} 派给您现场工单 {number},请在 {due_at} 前接单或拒绝(超时将派给下一位工程师)。\n"
                 "推荐理由:{reason}\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[Dispatch] Ticket {number}: accept by {due_at}",
            body="{owner} dispatches on-site ticket {number} to you. Accept or decline by {due_at}; after that it "
                 "goes to the next engineer.\nWhy you: {reason}\n" + _FOOTER_EN,
        ),
    },
    "stock_low": {
        "zh": Template(
            subject="【备件补货】{count} 项备件低于最低库存",
            body="以下备件低于最低库存,建议补货:\n{lines}\n查看库存:{url}",
        ),
        "en": Template(
            subject="[Reorder] {count} spare-part lines below minimum stock",
            body="These parts are below their minimum stock; suggested orders:\n{lines}\nSee the stock: {url}",
        ),
    },
    "alarm_escalated": {
        "zh": Template(
            subject="【设备报警未确认】{customer} {device}:{alarm}",
            body="设备 {device} 自 {since} 起报警:{message}\n报警级别:{severity};至今无人确认,"
                 "按呼叫树通知:{step}。\n请尽快确认并处理:{url}\n客户:{customer}",
        ),
        "en": Template(
            subject="[Unacknowledged alarm] {customer} {device}: {alarm}",
            body="Device {device} has been in alarm since {since}: {message}\nSeverity: {severity}; nobody has "
                 "acknowledged it, so the call tree now reaches: {step}.\nPlease acknowledge and act: {url}\n"
                 "Customer: {customer}",
        ),
    },
    "dispatch_failed": {
        "zh": Template(
            subject="【派工未成功】工单 {number}:{receiver} 未接单",
            body="{receiver} 未接工单 {number}:{reason}。请重新派工。\n" + _FOOTER_ZH,
        ),
        "en": Template(
            subject="[Dispatch not accepted] Ticket {number}: {receiver}",
            body="{receiver} did not take ticket {number}: {reason}. Please dispatch again.\n" + _FOOTER_EN,
        ),
    },
    "survey_invite": {
        "zh": Template(
            subject="【服务评价】工单 {number} 已闭环,请为本次服务打分",
            body="您好,\n您的设备 {device} 的工单 {number} 已闭环。请花一分钟为本次服务评价"
                 "(响应速度、专业能力、沟通,各 1-5 星):\n{url}\n链接有效期至 {expires_at},无需登录。\n"
                 "Rate this service (1 minute, no login): {url}",
        ),
        "en": Template(
            subject="[Rate our service] Ticket {number} is closed",
            body="Hello,\nticket {number} for your device {device} is closed. Please take a minute to rate the "
                 "service (speed, competence, communication, 1-5 stars each):\n{url}\n"
                 "The link works until {expires_at}; no login needed.",
        ),
    },
}


def _fields_of(text: str) -> set[str]:
    names: set[str] = set()
    for _literal, field, _spec, _conversion in string.Formatter().parse(text):
        if field is not None:
            names.add(field.split(".")[0].split("[")[0])
    return names


def required_fields(template: str, lang: str = "zh") -> frozenset[str]:
    """The context keys ``template`` needs in ``lang``: callers and tests can check before sending."""
    chosen = _template(template, normalise_language(lang))
    return frozenset(_fields_of(chosen.subject) | _fields_of(chosen.body))


def normalise_language(lang: str) -> str:
    """``zh``, ``zh-CN`` and ``zh_Hans`` are Chinese, ``en-US`` is English; other languages are an error."""
    base = (lang or "").replace("_", "-").split("-")[0].lower()
    if base not in LANGUAGES:
        raise TemplateError(f"no notification texts in language '{lang}' (use zh or en)",
                            zh=f"没有语言为 '{lang}' 的通知模板（请使用 zh 或 en）")
    return base


def _template(name: str, lang: str) -> Template:
    by_lang = TEMPLATES.get(name)
    if by_lang is None:
        known = ", ".join(sorted(TEMPLATES))
        raise TemplateError(f"unknown notification template '{name}' (known: {known})",
                            zh=f"未知的通知模板 '{name}'（可用：{known}）")
    return by_lang[lang]


def display_value(value: object, lang: str) -> str:
    """How one context value reads in a message of language ``lang``."""
    if isinstance(value, Mapping) and lang in value:
        return display_value(value[lang], lang)
    label = getattr(value, "label", None)
    if callable(label):
        return str(label(lang))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TemplateError("notification times must be time-zone aware", zh="通知中的时间必须带时区")
        return value.astimezone(DISPLAY_ZONE).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.1f}"
    return str(value)


def render(template: str, lang: str, context: Mapping[str, object]) -> Rendered:
    """Fill ``template`` in ``lang``; a field missing from ``context`` raises ``TemplateError`` naming it."""
    lang = normalise_language(lang)
    chosen = _template(template, lang)
    missing = sorted(required_fields(template, lang) - set(context))
    if missing:
        names = ", ".join(missing)
        raise TemplateError(
            f"notification template '{template}' ({lang}) needs context field(s) missing: {names}",
            zh=f"通知模板 '{template}'（{lang}）缺少上下文字段：{names}",
            details=[{"field": name, "message": "missing"} for name in missing],
        )
    values = {key: display_value(value, lang) for key, value in context.items()}
    subject = chosen.subject.format(**values).replace("\r", " ").replace("\n", " ")
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    return Rendered(template=template, lang=lang, subject=subject, body=chosen.body.format(**values))


def plain(value: Any) -> Any:
    """A JSON-safe copy of a context value, for the outbox row's ``payload`` and generic webhooks."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
