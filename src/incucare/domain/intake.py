"""Reading a free-text message: which ticket numbers and which device serials it mentions.

Lab staff write "Re: [T2026-000123] 还是报警" or "序列号:sn-ivf-001" or paste a nameplate photo's text;
the reader finds the candidates, the service checks them against what the sender may see.
"""

from __future__ import annotations

import re
import unicodedata

TICKET_NUMBER = re.compile(r"(?<![A-Za-z0-9])T(\d{4})-(\d{6})(?!\d)", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_/.-]{3,63}")


def ticket_numbers(text: str) -> list[str]:
    """Ticket numbers in order of appearance, normalised to ``T2026-000123``, without repeats."""
    folded = unicodedata.normalize("NFKC", text)
    seen: list[str] = []
    for year, seq in TICKET_NUMBER.findall(folded):
        number = f"T{year}-{seq}"
        if number not in seen:
            seen.append(number)
    return seen


def serial_candidates(text: str) -> list[str]:
    """Upper-cased tokens that could be a serial number (letters, digits, dashes), in order, without repeats.

    Full-width characters are folded first (ＳＮ－００１ is SN-001); trailing punctuation is dropped.
    The caller keeps only the candidates that are real serials of the sender's devices.
    """
    folded = unicodedata.normalize("NFKC", text)
    seen: list[str] = []
    for token in _TOKEN.findall(folded):
        candidate = token.strip("._-/").upper()
        if candidate and candidate not in seen and any(ch.isdigit() for ch in candidate):
            seen.append(candidate)
    return seen
