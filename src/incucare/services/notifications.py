"""The notification outbox: queue messages inside the business transaction, deliver them afterwards.

Why an outbox: a use case (an SLA breach, an escalation) writes its notification rows in the same
transaction as the change itself, so a message exists exactly when the change committed, and slow or
failing mail servers and chat robots never hold a business transaction open. ``deliver_due`` then
sends what is due, retries failures with exponential backoff and keeps the delivery history.

Delivery guarantees. Rows are claimed in short transactions with one atomic
``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` (PostgreSQL skips rows
another worker holds; SQLite serialises writers, and the single statement never upgrades a read lock).
A claimed row is marked ``sending`` with a lease (``next_attempt_at = now + LEASE``); after the send the
row is finished in its own commit. The only window for a duplicate is a crash between a successful send
and that commit: the lease then runs out and another worker sends the message again. Delivery is
therefore at-least-once, never "maybe zero"; e-mails carry ``X-Incucare-Notification: notification-<id>``
so a receiver can spot the rare repeat.

In-app notifications are the inbox itself: they are "sent" the moment they are queued.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import Notification, User, WebhookEndpoint
from incucare.adapters.notify import DeliveryError, EmailSender, WebhookSender
from incucare.adapters.notify.smtp import SmtpSender
from incucare.adapters.notify.webhook import KINDS, HttpWebhookSender, robot_payload
from incucare.config import Settings
from incucare.domain.errors import NotFound, ValidationFailed
from incucare.services.context import Actor
from incucare.services.notification_templates import plain, render
from incucare.services.paging import Page, paginate

__all__ = [
    "CHANNELS",
    "DeliveryReport",
    "QuietCalendar",
    "Transports",
    "backoff",
    "deliver_due",
    "enqueue",
    "list_inbox",
    "mark_all_read",
    "mark_read",
    "notify_user",
    "notify_webhooks",
    "transports_from_settings",
]

log = logging.getLogger("incucare.notifications")

CHANNELS = ("email", "webhook", "inapp")
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
BATCH_SIZE = 20
"""Rows claimed per transaction: small, so a claim never outlives its lease even with slow servers."""
LEASE = timedelta(minutes=15)
"""How long a claimed row belongs to one worker before another may assume it crashed and take it over."""
BACKOFF_CAP = timedelta(minutes=60)
DEDUPE_KEY_MAX = 128


class QuietCalendar(Protocol):
    """Working hours for non-critical e-mail (the SLA ``WorkCalendar`` fits): nobody reads mail at 3 a.m."""

    def is_working_time(self, at: datetime) -> bool: ...

    def next_working_time(self, at: datetime) -> datetime: ...


@dataclass(frozen=True)
class Transports:
    """The channels' senders plus the retry budget, built once per worker from Settings."""

    email: EmailSender
    webhook: WebhookSender
    max_attempts: int = 8


def transports_from_settings(settings: Settings) -> Transports:
    """Real SMTP and HTTP senders configured by INCUCARE_SMTP_* / INCUCARE_WEBHOOK_* variables."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    email = SmtpSender(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                       username=settings.smtp_username, password=password, starttls=settings.smtp_starttls,
                       timeout_s=settings.smtp_timeout_s)
    return Transports(email=email, webhook=HttpWebhookSender(timeout_s=settings.webhook_timeout_s),
                      max_attempts=settings.notify_max_attempts)


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` call did, for logs, the CLI and tests."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 1, 2, 4, 8 ... minutes, never more than an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def _check_dedupe_key(key: str) -> None:
    if len(key) > DEDUPE_KEY_MAX:
        raise ValidationFailed(f"dedupe_key is longer than {DEDUPE_KEY_MAX} characters: {key[:40]}…",
                               zh=f"dedupe_key 超过 {DEDUPE_KEY_MAX} 个字符：{key[:40]}…")


def _by_dedupe_key(session: Session, key: str) -> Notification | None:
    return session.scalar(select(Notification).where(Notification.dedupe_key == key))


def _enqueue(session: Session, *, now: datetime, template: str, channel: str, recipient: str,
             context: Mapping[str, object], lang: str, user_id: int | None, ticket_id: int | None,
             critical: bool, dedupe_key: str | None, webhook_kind: str | None = None) -> Notification:
    if channel not in CHANNELS:
        raise ValidationFailed(f"unknown notification channel '{channel}' (use one of {', '.join(CHANNELS)})",
                               zh=f"未知的通知渠道 '{channel}'（可用：{'、'.join(CHANNELS)}）")
    if not recipient.strip():
        raise ValidationFailed("a notification needs a recipient", zh="通知必须有接收方")
    if channel == "inapp" and user_id is None:
        raise ValidationFailed("an in-app notification needs the user_id of its reader",
                               zh="站内通知必须指定接收用户（user_id）")
    rendered = render(template, lang, context)
    if dedupe_key is not None:
        _check_dedupe_key(dedupe_key)
        existing = _by_dedupe_key(session, dedupe_key)
        if existing is not None:
            return existing
    payload: dict[str, Any] = {"context": plain(context)}
    if webhook_kind is not None:
        payload["webhook_kind"] = webhook_kind
    inbox = channel == "inapp"
    row = Notification(
        channel=channel, recipient=recipient, user_id=user_id, ticket_id=ticket_id, lang=rendered.lang,
        template=template, subject=rendered.subject, body=rendered.body, payload=payload, critical=critical,
        status=SENT if inbox else PENDING, attempts=0, next_attempt_at=now, last_error="",
        dedupe_key=dedupe_key, created_at=now, sent_at=now if inbox else None, read_at=None,
    )
    if dedupe_key is None:
        session.add(row)
        session.flush()
        return row
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # another transaction queued the same key and committed first: that row is the message
        existing = _by_dedupe_key(session, dedupe_key)
        if existing is None:
            raise
        return existing
    return row


def enqueue(session: Session, *, now: datetime, template: str, channel: str, recipient: str,
            context: Mapping[str, object], lang: str = "zh", user_id: int | None = None,
            ticket_id: int | None = None, critical: bool = False, dedupe_key: str | None = None) -> Notification:
    """Queue one message in the caller's transaction (never commits).

    The text is rendered now, so a missing template field fails the use case that asked for it. A
    ``dedupe_key`` seen before returns the existing row and queues nothing: sweeps may run twice.
    """
    return _enqueue(session, now=now, template=template, channel=channel, recipient=recipient, context=context,
                    lang=lang, user_id=user_id, ticket_id=ticket_id, critical=critical, dedupe_key=dedupe_key)


def _suffixed(key: str | None, suffix: str) -> str | None:
    return f"{key}:{suffix}" if key is not None else None


def notify_user(session: Session, user: User, *, now: datetime, template: str, context: Mapping[str, object],
                ticket_id: int | None = None, critical: bool = False,
                dedupe_key: str | None = None) -> list[Notification]:
    """Tell one person in their language: always in the app, and by e-mail when they have an address.

    Deactivated accounts get nothing (nobody reads that inbox). Each channel gets its own dedupe key
    (``<key>:inapp``, ``<key>:email``) so a repeat of the whole call queues nothing new.
    """
    if not user.active:
        return []
    lang = user.language or "zh"
    rows = [_enqueue(session, now=now, template=template, channel="inapp", recipient=f"user:{user.id}",
                     context=context, lang=lang, user_id=user.id, ticket_id=ticket_id, critical=critical,
                     dedupe_key=_suffixed(dedupe_key, "inapp"))]
    if user.email.strip():
        rows.append(_enqueue(session, now=now, template=template, channel="email", recipient=user.email.strip(),
                             context=context, lang=lang, user_id=user.id, ticket_id=ticket_id, critical=critical,
                             dedupe_key=_suffixed(dedupe_key, "email")))
    return rows


def notify_webhooks(session: Session, *, now: datetime, template: str, context: Mapping[str, object],
                    region_id: int | None, ticket_id: int | None = None, critical: bool = False,
                    dedupe_key: str | None = None, lang: str = "zh") -> list[Notification]:
    """Post to every active group robot that covers the region (endpoints without a region cover all).

    Chat groups of a Chinese service organisation read Chinese, hence ``lang="zh"`` by default.
    """
    region_match: ColumnElement[bool] = WebhookEndpoint.region_id.is_(None)
    if region_id is not None:
        region_match = or_(region_match, WebhookEndpoint.region_id == region_id)
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True), region_match).order_by(WebhookEndpoint.id)
    ).all()
    rows = []
    for endpoint in endpoints:
        kind = endpoint.kind if endpoint.kind in KINDS else "generic"
        rows.append(_enqueue(session, now=now, template=template, channel="webhook", recipient=endpoint.url,
                             context=context, lang=lang, user_id=None, ticket_id=ticket_id, critical=critical,
                             dedupe_key=_suffixed(dedupe_key, f"webhook:{endpoint.id}"), webhook_kind=kind))
    return rows


@dataclass(frozen=True)
class _Job:
    """A claimed row, detached from any session while its message is on the wire."""

    id: int
    channel: str
    recipient: str
    template: str
    subject: str
    body: str
    payload: dict[str, Any]
    critical: bool
    attempts: int
    ticket_id: int | None


def _claim(session_factory: sessionmaker[Session], *, now: datetime, size: int) -> list[_Job]:
    claimable = (Notification.status.in_((PENDING, SENDING)), Notification.next_attempt_at <= now)
    due = (select(Notification.id).where(*claimable)
           .order_by(Notification.next_attempt_at, Notification.id).limit(size)
           .with_for_update(skip_locked=True))
    with session_factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Lock first, then update the fixed list. Inside ``UPDATE ... WHERE id IN (SELECT ... LIMIT n
            # SKIP LOCKED)`` PostgreSQL may rescan the subquery, and each rescan skips the rows it just
            # locked and returns new ones, so the LIMIT would not hold.
            chosen: Any = list(session.scalars(due))
            if not chosen:
                return []
        else:
            # SQLite: one statement, so the transaction starts with the write lock and never has to
            # upgrade a read snapshot that another writer made stale (SQLITE_BUSY).
            chosen = due
        stmt = (update(Notification).where(Notification.id.in_(chosen), *claimable)
                .values(status=SENDING, next_attempt_at=now + LEASE)
                .returning(Notification.id, Notification.channel, Notification.recipient, Notification.template,
                           Notification.subject, Notification.body, Notification.payload, Notification.critical,
                           Notification.attempts, Notification.ticket_id, Notification.created_at)
                .execution_options(synchronize_session=False))
        rows = session.execute(stmt).all()
        session.commit()
    rows = sorted(rows, key=lambda r: (r.created_at, r.id))
    return [_Job(id=r.id, channel=r.channel, recipient=r.recipient, template=r.template, subject=r.subject,
                 body=r.body, payload=dict(r.payload or {}), critical=r.critical, attempts=r.attempts,
                 ticket_id=r.ticket_id) for r in rows]


def _finish(session_factory: sessionmaker[Session], job: _Job, **values: Any) -> None:
    with session_factory() as session:
        session.execute(update(Notification).where(Notification.id == job.id, Notification.status == SENDING)
                        .values(**values).execution_options(synchronize_session=False))
        session.commit()


def _send(job: _Job, transports: Transports) -> None:
    if job.channel == "email":
        transports.email.send(to=job.recipient, subject=job.subject, body=job.body,
                              message_ref=f"notification-{job.id}")
    elif job.channel == "webhook":
        kind = str(job.payload.get("webhook_kind", "generic"))
        document = robot_payload(kind, subject=job.subject, body=job.body, template=job.template,
                                 ticket_id=job.ticket_id, critical=job.critical,
                                 context=job.payload.get("context", {}))
        transports.webhook.post(job.recipient, document)
    else:
        raise DeliveryError(f"no transport for channel '{job.channel}'", permanent=True)


def _deliver(session_factory: sessionmaker[Session], job: _Job, *, now: datetime, transports: Transports,
             quiet_until: datetime | None, report: DeliveryReport) -> None:
    if job.channel == "inapp":
        _finish(session_factory, job, status=SENT, sent_at=now, next_attempt_at=now)
        report.sent += 1
        return
    if job.channel == "email" and not job.critical and quiet_until is not None:
        _finish(session_factory, job, status=PENDING, next_attempt_at=quiet_until)
        report.deferred += 1
        return
    attempts = job.attempts + 1
    try:
        _send(job, transports)
    except Exception as exc:
        permanent = isinstance(exc, DeliveryError) and exc.permanent
        message = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        if permanent or attempts >= transports.max_attempts:
            log.warning("notification %s failed for good after %s attempt(s): %s", job.id, attempts, message)
            _finish(session_factory, job, status=FAILED, attempts=attempts, last_error=message[:2000],
                    next_attempt_at=now)
            report.failed += 1
        else:
            log.info("notification %s attempt %s failed, retrying: %s", job.id, attempts, message)
            _finish(session_factory, job, status=PENDING, attempts=attempts, last_error=message[:2000],
                    next_attempt_at=now + backoff(attempts))
            report.retried += 1
        return
    _finish(session_factory, job, status=SENT, attempts=attempts, sent_at=now, next_attempt_at=now, last_error="")
    report.sent += 1


def deliver_due(session_factory: sessionmaker[Session], *, now: datetime, transports: Transports,
                quiet_calendar: QuietCalendar | None = None, limit: int = 200) -> DeliveryReport:
    """Send up to ``limit`` due messages, oldest first; safe to run from several workers at once.

    Outside working time (per ``quiet_calendar``) non-critical e-mail waits for the next working
    moment; critical messages, webhooks and in-app rows never wait. A failed attempt is retried after
    ``backoff`` until ``transports.max_attempts``; a permanent refusal (unknown mailbox) fails at once.
    """
    report = DeliveryReport()
    quiet_until: datetime | None = None
    if quiet_calendar is not None and not quiet_calendar.is_working_time(now):
        quiet_until = quiet_calendar.next_working_time(now)
        if quiet_until <= now:
            quiet_until = None
    handled = 0
    while handled < limit:
        batch = _claim(session_factory, now=now, size=min(BATCH_SIZE, limit - handled))
        if not batch:
            break
        handled += len(batch)
        for job in batch:
            _deliver(session_factory, job, now=now, transports=transports, quiet_until=quiet_until, report=report)
    return report


def list_inbox(session: Session, actor: Actor, *, unread: bool = False, limit: int = 50,
               offset: int = 0) -> Page[Notification]:
    """The caller's own in-app notifications, newest first; nobody can read another person's inbox."""
    if actor.user_id is None:
        return Page(items=[], total=0, limit=limit, offset=offset)
    query = select(Notification).where(Notification.channel == "inapp", Notification.user_id == actor.user_id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    return paginate(session, query, limit=limit, offset=offset)


def mark_read(session: Session, actor: Actor, notification_id: int, *, now: datetime) -> Notification:
    """Mark one of the caller's notifications read (idempotent: the first reading time is kept)."""
    row = session.scalar(select(Notification).where(
        Notification.id == notification_id, Notification.channel == "inapp",
        Notification.user_id == actor.user_id, Notification.user_id.is_not(None)))
    if row is None:
        raise NotFound(f"notification {notification_id} not found", zh=f"未找到通知 {notification_id}")
    if row.read_at is None:
        row.read_at = now
        session.flush()
    return row


def mark_all_read(session: Session, actor: Actor, *, now: datetime) -> int:
    """Mark every unread in-app notification of the caller read; returns how many changed."""
    if actor.user_id is None:
        return 0
    result = session.execute(
        update(Notification)
        .where(Notification.channel == "inapp", Notification.user_id == actor.user_id,
               Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
