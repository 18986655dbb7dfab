"""Satisfaction survey rules (满意度): what a valid answer is, when a link is dead, one answer per ticket.

Pure: the service passes the stored survey's state and ``now``. Stars are whole numbers 1..5 for each of
the three aspects customers judge a service by (speed, competence, communication); the comment is optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from incucare.domain.errors import Conflict, NotFound, ValidationFailed

ASPECTS = ("speed", "competence", "communication")
ASPECT_LABELS = {"speed": ("响应速度", "Speed"), "competence": ("专业能力", "Competence"),
                 "communication": ("沟通", "Communication")}
MAX_COMMENT = 2000


class LinkExpired(NotFound):
    """The survey link was real but is past its expiry date (the web answers 410 Gone)."""

    code = "survey_expired"


class AlreadyAnswered(Conflict):
    """The ticket's survey has its answer; a second submission changes nothing (409)."""

    code = "survey_answered"


@dataclass(frozen=True)
class Answer:
    """A validated answer: three star ratings and a trimmed comment."""

    speed: int
    competence: int
    communication: int
    comment: str = ""

    @property
    def average(self) -> float:
        """The mean of the three ratings (the ticket's CSAT)."""
        return round((self.speed + self.competence + self.communication) / 3, 2)


def validate_answer(*, speed: object, competence: object, communication: object, comment: str | None) -> Answer:
    """Check every aspect is a whole number of stars 1..5 and the comment is not too long; name what is wrong."""
    values = {"speed": speed, "competence": competence, "communication": communication}
    details: list[dict[str, object]] = []
    stars: dict[str, int] = {}
    for aspect, raw in values.items():
        value: int | None = None
        if isinstance(raw, bool):
            value = None
        elif isinstance(raw, int):
            value = raw
        elif isinstance(raw, str) and raw.strip().isdigit():
            value = int(raw.strip())
        if value is None or not 1 <= value <= 5:
            details.append({"field": aspect, "message": "give 1 to 5 stars"})
        else:
            stars[aspect] = value
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        details.append({"field": "comment", "message": f"at most {MAX_COMMENT} characters"})
    if details:
        names = ", ".join(str(d["field"]) for d in details)
        zh = "、".join(ASPECT_LABELS[str(d["field"])][0] if d["field"] in ASPECT_LABELS else "评论" for d in details)
        raise ValidationFailed(f"please rate each aspect with 1 to 5 stars ({names})",
                               zh=f"请为每一项打 1 到 5 星(有误:{zh})", details=details)
    return Answer(stars["speed"], stars["competence"], stars["communication"], text)


def check_open(*, answered_at: datetime | None, expires_at: datetime, now: datetime) -> None:
    """Refuse a second answer (409) and an answer after the link expired (410)."""
    if answered_at is not None:
        raise AlreadyAnswered("this service has already been rated; thank you, the first answer is kept",
                              zh="本次服务已评价过,感谢您的反馈;系统保留第一次的评价")
    if now >= expires_at:
        raise LinkExpired("this survey link has expired", zh="该评价链接已过期")
