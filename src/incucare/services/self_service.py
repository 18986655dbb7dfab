"""The tier-1 assistant: the articles that fit a report, and "did this fix it?" (自助排查与首次解决).

The agent sees the best troubleshooting articles for the ticket; the customer sees the ones they can
follow themselves before and after submitting. A "yes, fixed" resolves the ticket at tier 1 and marks it
as a first-contact resolution by self-service; a "no" is logged on the timeline so the agent does not
suggest the same article again, and the ticket goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Ticket, TicketEvent
from incucare.adapters.kb.articles import Article, load_articles
from incucare.adapters.kb.search import shipped_index
from incucare.domain.errors import Conflict, PermissionDenied, ValidationFailed
from incucare.domain.model import EventKind, Role, TicketStatus, Tier
from incucare.services import sla
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.tickets import get_ticket

SELF_FIXABLE = frozenset({TicketStatus.NEW, TicketStatus.ACKNOWLEDGED, TicketStatus.REMOTE_TROUBLESHOOTING,
                          TicketStatus.WAITING_CUSTOMER, TicketStatus.REOPENED})
"""Statuses in which nobody has been sent yet, so the customer's own fix can still resolve the ticket."""
CATEGORY_BONUS = 1.5
"""Added to the BM25 score of articles in the ticket's triaged category (the text alone can be vague)."""


@dataclass(frozen=True)
class Suggestion:
    """An article offered for a report, and the score it was ranked by."""

    article: Article
    score: float


def suggest(text: str, *, category: str | None = None, customer_facing: bool = False,
            limit: int = 3) -> list[Suggestion]:
    """The best articles for ``text``; for customers only those a customer can follow (tier-1 articles)."""
    if not text.strip():
        return []
    hits = shipped_index().search(text, limit=max(limit * 4, 12))
    ranked = []
    for hit in hits:
        if customer_facing and hit.article.tier != 1:
            continue
        bonus = CATEGORY_BONUS if category and hit.article.category == category else 0.0
        ranked.append(Suggestion(hit.article, hit.score + bonus))
    ranked.sort(key=lambda s: s.score, reverse=True)
    return ranked[:limit]


def suggestions_for(session: Session, actor: Actor, ticket: Ticket, *, limit: int = 3) -> list[Suggestion]:
    """The articles for one ticket, without those the customer already said did not help."""
    tried = set(tried_articles(session, ticket))
    found = suggest(ticket.description, category=ticket.category, customer_facing=not actor.is_staff,
                    limit=limit + len(tried))
    return [s for s in found if s.article.id not in tried][:limit]


def tried_articles(session: Session, ticket: Ticket) -> list[str]:
    """Article ids the customer already answered "did not fix it" for on this ticket."""
    notes = session.scalars(select(TicketEvent.old_value).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.SELF_SERVICE.value,
        TicketEvent.new_value == "not_fixed")).all()
    return [a for note in notes if note for a in note.split(",") if a]


def _articles(ids: list[str]) -> list[Article]:
    known = {a.id: a for a in load_articles()}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValidationFailed(f"unknown article(s): {', '.join(unknown)}", zh=f"未知的知识库文章:{', '.join(unknown)}")
    return [known[i] for i in ids]


def answer(session: Session, actor: Actor, ticket_id: int, *, now: datetime, fixed: bool,
           article_ids: list[str], note: str = "") -> Ticket:
    """Record the customer's answer to "did this fix it?"; yes resolves at tier 1 as a first-contact fix.

    Staff may record the answer a customer gave on the phone. Answering "fixed" twice is harmless.
    """
    if actor.role not in {Role.CUSTOMER, Role.AGENT, Role.SERVICE_MANAGER, Role.ADMIN, Role.HQ_EXPERT}:
        raise PermissionDenied("only the customer or the tier-1 desk records a self-service answer",
                               zh="只有客户或一线客服可以记录自助排查结果")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    articles = _articles(article_ids)
    titles = "、".join(a.title_zh for a in articles) or "—"
    text = note.strip()[:2000]
    status = TicketStatus(ticket.status)
    if fixed and ticket.self_service_resolved and status is TicketStatus.RESOLVED:
        return ticket
    if fixed and (status not in SELF_FIXABLE or ticket.tier != int(Tier.REMOTE)):
        raise Conflict("this ticket is already being handled beyond tier 1: tell the engineer or agent instead",
                       zh="该工单已进入现场或总部处理阶段,请直接告知负责的工程师或客服")
    ids = ",".join(a.id for a in articles)
    session.add(TicketEvent(ticket_id=ticket.id, at=now, actor_id=actor.user_id, actor_name=actor.name,
                            kind=EventKind.SELF_SERVICE.value, old_value=ids[:255],
                            new_value="fixed" if fixed else "not_fixed",
                            note=f"{'已解决' if fixed else '未解决'}:{titles}" + (f"\n{text}" if text else "")))
    changes: dict[str, tuple[object, object]] = {"self_service": (None, "fixed" if fixed else "not_fixed")}
    if fixed:
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor_id=actor.user_id, actor_name=actor.name,
                                kind=EventKind.STATUS_CHANGED.value, old_value=status.value,
                                new_value=TicketStatus.RESOLVED.value,
                                note="客户自助排查已解决 / fixed by self-service"))
        ticket.status = TicketStatus.RESOLVED.value
        ticket.resolved_at = now
        ticket.self_service_resolved = True
        changes["status"] = (status.value, TicketStatus.RESOLVED.value)
    ticket.updated_at = now
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="self_service",
                  changes=changes, reason=text)
    sla.refresh(session, ticket, now)
    return ticket
