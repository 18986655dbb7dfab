"""Notification texts: both languages everywhere, clear errors, values rendered per language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incucare.adapters.notify.webhook import WECOM_MARKDOWN_MAX_BYTES, robot_payload
from incucare.domain.model import Priority, Tier
from incucare.services.notification_templates import (
    LANGUAGES,
    SUBJECT_MAX,
    TEMPLATES,
    TemplateError,
    normalise_language,
    render,
    required_fields,
)
from incucare.services.notifications import backoff

REQUIRED_TEMPLATES = {"sla_warning", "sla_breach", "escalated", "handoff_offered", "handoff_expired",
                      "ticket_assigned"}


def _full_context(template: str) -> dict[str, object]:
    return {name: f"<{name}>" for name in required_fields(template)}


def test_every_template_exists_in_both_languages_with_the_same_fields() -> None:
    assert set(TEMPLATES) >= REQUIRED_TEMPLATES
    for name, by_lang in TEMPLATES.items():
        assert set(by_lang) == set(LANGUAGES), name
        assert required_fields(name, "zh") == required_fields(name, "en"), name
        for lang in LANGUAGES:
            assert by_lang[lang].subject.strip() and by_lang[lang].body.strip(), (name, lang)
            rendered = render(name, lang, _full_context(name))
            assert "{" not in rendered.subject + rendered.body, (name, lang)
            assert "\n" not in rendered.subject


def test_chinese_texts_use_chinese_and_english_texts_do_not() -> None:
    for name, by_lang in TEMPLATES.items():
        zh, en = by_lang["zh"], by_lang["en"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.subject), name
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in en.subject + en.body), name


def test_missing_fields_are_named_in_both_languages() -> None:
    context = _full_context("sla_warning")
    del context["percent"], context["owner"]
    with pytest.raises(TemplateError) as caught:
        render("sla_warning", "en", context)
    assert "needs context field(s) missing: owner, percent" in caught.value.message
    assert "缺少上下文字段：owner, percent" in caught.value.zh
    assert [d["field"] for d in caught.value.details] == ["owner", "percent"]


def test_unknown_template_and_language_are_errors() -> None:
    with pytest.raises(TemplateError, match=r"unknown notification template 'nope'.*sla_warning"):
        render("nope", "zh", {})
    with pytest.raises(TemplateError, match="no notification texts in language 'fr'"):
        render("sla_warning", "fr", _full_context("sla_warning"))
    assert [normalise_language(x) for x in ("zh", "zh-CN", "zh_Hans", "en", "en-US", "EN")] == [
        "zh", "zh", "zh", "en", "en", "en"]


def test_values_render_in_the_message_language() -> None:
    context = {
        **_full_context("escalated"),
        "tier": Tier.HQ,
        "reason": {"zh": "需要固件升级", "en": "needs a firmware update"},
        "number": "SR-1",
    }
    zh = render("escalated", "zh", context)
    en = render("escalated", "en", context)
    assert zh.subject == f"【工单升级】工单 SR-1 已升级至{Tier.HQ.label('zh')}"
    assert en.subject == f"[Escalated] Ticket SR-1 is now at {Tier.HQ.label('en')}"
    assert "需要固件升级" in zh.body and "needs a firmware update" in en.body


def test_times_show_in_beijing_time_and_naive_times_are_refused() -> None:
    context = {**_full_context("sla_breach"), "due_at": datetime(2026, 9, 30, 17, 30, tzinfo=UTC)}
    assert "2026-10-01 01:30" in render("sla_breach", "zh", context).body
    with pytest.raises(TemplateError, match="time-zone aware"):
        render("sla_breach", "zh", {**context, "due_at": datetime(2026, 9, 30, 17, 30)})


def test_percent_and_labelled_enums() -> None:
    context = {**_full_context("sla_warning"), "percent": 90.0, "clock_label": Priority.HIGH}
    assert "已用 90%" in render("sla_warning", "zh", context).subject
    assert "90.5%" in render("sla_warning", "en", {**context, "percent": 90.5}).subject
    assert "High" in render("sla_warning", "en", context).subject


def test_long_subjects_are_cut_to_the_column_and_lose_line_breaks() -> None:
    context = {**_full_context("ticket_assigned"), "number": "X" * 400 + "\nINJECTED: header"}
    subject = render("ticket_assigned", "en", context).subject
    assert len(subject) == SUBJECT_MAX and subject.endswith("…") and "\n" not in subject


def test_backoff_doubles_from_one_minute_up_to_an_hour() -> None:
    assert [backoff(n) for n in range(1, 10)] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60, 60)]


def test_robot_payload_shapes() -> None:
    common = {"subject": "主题", "body": "正文", "template": "sla_breach", "ticket_id": 7, "critical": True,
              "context": {"number": "SR-1"}}
    assert robot_payload("wecom", **common) == {"msgtype": "markdown", "markdown": {"content": "**主题**\n\n正文"}}
    assert robot_payload("dingtalk", **common) == {
        "msgtype": "markdown", "markdown": {"title": "主题", "text": "### 主题\n\n正文"}}
    assert robot_payload("generic", **common) == {
        "subject": "主题", "body": "正文", "template": "sla_breach", "ticket_id": 7, "critical": True,
        "payload": {"number": "SR-1"}}
    with pytest.raises(ValueError, match="unknown webhook kind 'slack'"):
        robot_payload("slack", **common)


def test_wecom_content_is_cut_to_its_byte_limit() -> None:
    payload = robot_payload("wecom", subject="主题", body="工单" * 3000, template="t", ticket_id=None,
                            critical=False, context={})
    content = payload["markdown"]["content"]
    assert len(content.encode("utf-8")) <= WECOM_MARKDOWN_MAX_BYTES and content.endswith("…")
