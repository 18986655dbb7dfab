"""Commands a follower types into the Official Account chat (pure parsing, no I/O).

Today there is one: ``绑定 <手机号> <设备序列号>`` (or ``bind <phone> <serial>``), which links the
follower's OpenID to a customer contact so later messages file themselves as that contact.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_BIND = re.compile(
    r"^\s*(?:绑定|綁定|bind)\s*[:：]?\s*(?P<phone>(?:\+86\s+)?\+?\d[\d\-]{4,22}\d)(?:[\s,，;；]+(?P<serial>\S{1,64}))?\s*$",
    re.IGNORECASE,
)
_BIND_WORD = re.compile(r"^\s*(?:绑定|綁定|bind)(?:\s|[:：]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class BindCommand:
    """A bind request: the contact's phone (digits only) and, when given, a serial of one of its devices."""

    phone: str
    serial: str = ""


def normalize_phone(value: str) -> str:
    """Digits only, without China's country code: ``+86 138-0013-8000`` and ``13800138000`` compare equal."""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", value) if ch.isdigit())
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def looks_like_bind(text: str) -> bool:
    """The text starts with the bind keyword, well-formed or not (so a typo gets help, not a ticket)."""
    return bool(_BIND_WORD.match(unicodedata.normalize("NFKC", text)))


def parse_bind(text: str) -> BindCommand | None:
    """The bind command in ``text``, or None; full-width digits and punctuation are folded first."""
    match = _BIND.match(unicodedata.normalize("NFKC", text))
    if match is None:
        return None
    serial = (match.group("serial") or "").strip("._-/").upper()
    return BindCommand(phone=normalize_phone(match.group("phone")), serial=serial)
