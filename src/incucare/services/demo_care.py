"""Demo data for customer care (issue 7): answered satisfaction surveys and planned preventive visits.

The demo's ticket history closes tickets through ``move_ticket``, so every closed ticket already has its
survey; here about seven in ten customers answer, within three days, with scores that follow how the
service went (a breached SLA or buck-passing costs stars), so CSAT on the KPI pages is not flat. Then one
generation round plans the preventive visits of the running annual agreements as of ``now``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Ticket
from incucare.adapters.db.tables_care import Survey
from incucare.domain.model import Role
from incucare.domain.surveys import validate_answer
from incucare.services.context import Actor
from incucare.services.maintenance import GenerationReport, generate_visits
from incucare.services.surveys import record_answer

ANSWER_RATE = 0.7
COMMENTS = ("工程师很专业,讲解清楚", "响应及时,当天到场", "希望备件能更快到", "沟通顺畅", "", "", "",
            "Engineer was on time and explained the calibration well", "等待时间有点长")


def load_demo_care(session: Session, *, now: datetime, seed: int = 20261205) -> tuple[int, GenerationReport]:
    """Answer most of the demo's surveys and plan the due preventive visits; returns (answers, generation)."""
    rng = random.Random(seed)
    answered = 0
    rows = session.execute(select(Survey, Ticket).join(Ticket, Ticket.id == Survey.ticket_id)
                           .where(Survey.answered_at.is_(None)).order_by(Survey.id)).all()
    for survey, ticket in rows:
        if rng.random() > ANSWER_RATE:
            continue
        at = survey.sent_at + timedelta(hours=rng.uniform(1, 72))
        if at >= now or at >= survey.expires_at:
            continue
        penalty = (1 if ticket.ping_pong else 0) + (1 if ticket.handoff_count > 2 else 0)
        speed, competence, communication = (_stars(rng, penalty) for _ in range(3))
        answer = validate_answer(speed=speed, competence=competence, communication=communication,
                                 comment=rng.choice(COMMENTS))
        who = Actor(user_id=None, name=ticket.reporter_name or "客户", role=Role.CUSTOMER,
                    customer_id=survey.customer_id)
        record_answer(session, survey, answer, now=at, actor=who, channel=rng.choice(("link", "link", "portal")),
                      contact_id=None)
        answered += 1
    report = generate_visits(session, now=now)
    session.flush()
    return answered, report


def _stars(rng: random.Random, penalty: int) -> int:
    """Mostly 4-5 stars, fewer after a bumpy service."""
    return max(1, 5 - penalty - (1 if rng.random() < 0.3 else 0) - (1 if rng.random() < 0.08 else 0))
