"""Enumerations that carry their own Chinese and English labels.

Every code list shown to a person (statuses, roles, channels...) needs a zh-CN label first and an
English one second; keeping the labels beside the code means a new member can never be unlabelled.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self


class LabelledEnum(StrEnum):
    """A string enum whose members are declared as ``NAME = ("value", "中文", "English")``."""

    zh: str
    en: str

    def __new__(cls, value: str, zh: str = "", en: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.zh = zh or value
        member.en = en or value
        return member

    def label(self, lang: str = "zh") -> str:
        """The member's label in ``lang`` ("zh" or "en"); anything else falls back to Chinese."""
        return self.en if lang == "en" else self.zh

    @classmethod
    def parse(cls, raw: Any) -> Self:
        """Accept a value, a member name or a zh/en label (case-insensitive); raise ValueError otherwise."""
        if isinstance(raw, cls):
            return raw
        text = str(raw).strip()
        lowered = text.lower()
        for member in cls:
            if lowered in (member.value.lower(), member.name.lower(), member.en.lower()) or text == member.zh:
                return member
        allowed = ", ".join(m.value for m in cls)
        raise ValueError(f"'{text}' is not one of: {allowed}")

    @classmethod
    def choices(cls, lang: str = "zh") -> list[tuple[str, str]]:
        """(value, label) pairs, in declaration order, for select boxes and API docs."""
        return [(m.value, m.label(lang)) for m in cls]
