"""The e-mail parser on the mail real clients send: encoded headers in GBK and UTF-8, HTML-only bodies,
quoted history in every client's style, attachments by their bytes; and the loop guard's verdicts."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from incucare.adapters.mail import parse as parse_module
from incucare.adapters.mail.parse import decode_bytes, decode_header_text, html_to_text, parse_mail, trim_quoted
from incucare.domain.model import Channel
from incucare.services.mail_intake import loop_guard

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(200)) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)
PDF = b"%PDF-1.7\n" + bytes(100)


def b_word(text: str, charset: str, codec: str | None = None) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec or charset)).decode()}?="


# --- headers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (b_word("培养箱报警", "GBK"), "培养箱报警"),
    # labelled GB2312 but using GBK-only characters (喆, 堃), as Outlook and Foxmail do
    (b_word("张喆堃", "gb2312", "gbk"), "张喆堃"),
    (b_word("温度", "GB18030"), "温度"),
    ("=?utf-8?Q?CO2_=E6=8A=A5=E8=AD=A6?=", "CO2 报警"),
    ("Re: " + b_word("中文", "gbk") + " SN-001", "Re: 中文 SN-001"),
    # whitespace between two encoded words is not part of the text
    (b_word("培养", "utf-8") + "\r\n " + b_word("箱", "utf-8"), "培养箱"),
    # a character split across two encoded words (some clients cut at a byte count)
    ("=?utf-8?B?" + base64.b64encode("报".encode()[:2]).decode() + "?= =?utf-8?B?"
     + base64.b64encode("报".encode()[2:] + "警".encode()).decode() + "?=", "报警"),
    ("=?x-unknown-charset?B?" + base64.b64encode("报警".encode()).decode() + "?=", "报警"),
    ("plain ascii subject", "plain ascii subject"),
    ("=?utf-8?B?not base64!?=", "=?utf-8?B?not base64!?="),
    ("  folded\r\n   subject  ", "folded subject"),
])
def test_header_words_decode_whatever_the_client(raw: str, expected: str) -> None:
    assert decode_header_text(raw) == expected


@pytest.mark.parametrize(("data", "charset", "expected"), [
    ("温度报警".encode(), "utf-8", "温度报警"),
    ("温度报警".encode("gbk"), "gb2312", "温度报警"),
    ("温度报警".encode("gbk"), "us-ascii", "温度报警"),  # declared wrong, read right
    ("温度报警".encode("gbk"), None, "温度报警"),
    ("温度报警".encode(), "gbk", "温度报警"),  # labelled GBK, sent as UTF-8
    (b"plain", "no-such-charset", "plain"),
])
def test_bodies_decode_with_fallbacks(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


# --- the whole message -------------------------------------------------------------------------------------


def _message(subject: str = "SN-IVF-001 报警", body: str = "CO2 报警", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "王老师 <wang@ivf.example.cn>")
    msg["To"] = "service@incucare.example.cn"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 01 Jan 2024 08:00:00 +0800"
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def test_sender_subject_and_message_id_and_the_received_time_is_ours() -> None:
    msg = _message(Message_ID="<abc.123@ivf.example.cn>")
    parsed = parse_mail(msg.as_bytes(), now=NOW)
    report = parsed.report
    assert report.channel is Channel.EMAIL and report.external_id == "abc.123@ivf.example.cn"
    assert report.sender == "wang@ivf.example.cn" and report.sender_name == "王老师"
    assert report.subject == "SN-IVF-001 报警" and report.body == "CO2 报警"
    assert report.received_at == NOW  # the Date header (2024) is not trusted ...
    assert "Date: Mon, 01 Jan 2024 08:00:00 +0800" in report.raw  # ... but kept
    assert parsed.header("Message-Id") == "<abc.123@ivf.example.cn>"


def test_without_message_id_the_digest_of_the_raw_bytes_is_the_key() -> None:
    raw = _message().as_bytes()
    first, again = parse_mail(raw, now=NOW), parse_mail(raw, now=NOW)
    assert first.report.external_id == again.report.external_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert parse_mail(raw + b"\n", now=NOW).report.external_id != first.report.external_id


def test_a_huge_message_id_is_hashed_to_fit() -> None:
    parsed = parse_mail(_message(Message_ID="<" + "x" * 400 + "@host>").as_bytes(), now=NOW)
    assert parsed.report.external_id.startswith("sha256:") and len(parsed.report.external_id) < 80


def test_raw_8bit_gbk_headers_and_body_are_read() -> None:
    raw = ("From: 李工 <li@gmp.example.cn>\r\nSubject: 设备 SN-GMP-002 温度偏高\r\n"
           "Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n温度显示 38.5℃\r\n").encode("gbk")
    report = parse_mail(raw, now=NOW).report
    assert report.sender_name == "李工" and report.subject == "设备 SN-GMP-002 温度偏高"
    assert report.body == "温度显示 38.5℃" and "温度显示" in report.raw


def test_plain_text_is_preferred_over_html() -> None:
    msg = _message(body="the plain version")
    msg.add_alternative("<p>the <b>html</b> version</p>", subtype="html")
    assert parse_mail(msg.as_bytes(), now=NOW).report.body == "the plain version"


def test_html_only_mail_becomes_readable_text() -> None:
    msg = _message()
    msg.set_content("""<html><head><style>p {color: red}</style><title>t</title></head><body>
        <div>您好,</div><p>序列号&nbsp;SN-IVF-002 开门后 CO2&gt;8% 报警<br>屏幕显示 E12</p>
        <ul><li>已更换气瓶</li><li>已检查管路</li></ul><script>alert(1)</script>
        <div class="gmail_quote">王工 于2026年11月1日写道:<blockquote>旧邮件内容</blockquote></div>
        </body></html>""", subtype="html")
    body = parse_mail(msg.as_bytes(), now=NOW).report.body
    assert body == "您好,\n序列号 SN-IVF-002 开门后 CO2>8% 报警\n屏幕显示 E12\n• 已更换气瓶\n• 已检查管路"


def test_html_to_text_keeps_preformatted_text_and_table_cells() -> None:
    text = html_to_text("<table><tr><td>CO2</td><td>5.0%</td></tr></table><pre>E12  E13\n  E14</pre>")
    assert "CO2 5.0%" in text and "E12  E13\n  E14" in text


# --- quoted history ------------------------------------------------------------------------------------------

NEW = "还是报警，屏幕显示 E12。"


@pytest.mark.parametrize("history", [
    "-----原始邮件-----\n发件人: service@incucare\n发送时间: 2026年11月27日 10:00\n主题: 已收到\n旧内容",
    "------------------ 原始邮件 ------------------\n发件人: \"售后\"<service@incucare>;\n旧内容",
    "-----Original Message-----\nFrom: service\nSent: Friday\nold text",
    "On Fri, 27 Nov 2026 at 10:00, incucare service <service@incucare.example.cn>\nwrote:\n> old text",
    "On Fri, Nov 27, 2026 at 10:00 AM Service <service@incucare> wrote:\n> old",
    "incucare 售后 <service@incucare.example.cn> 于2026年11月27日周五 10:00写道：\n> 旧内容",
    "在 2026年11月27日，10:00，service <service@incucare> 写道：\n> 旧内容",
    "发件人: 售后服务 <service@incucare>\n时间: 2026-11-27\n收件人: 王老师\n主题: [T2026-000001]\n旧内容",
    "________________________________\nFrom: Service <service@incucare>\nSent: Friday\nTo: Wang\nold",
    "> 我们已收到您的报修\n> 工单号 T2026-000001",
])
def test_quoted_history_is_trimmed_in_every_style(history: str) -> None:
    assert trim_quoted(f"{NEW}\n\n{history}") == NEW


def test_inline_quotes_go_and_the_answers_between_them_stay() -> None:
    text = "> 是否已更换气瓶?\n已经换了\n> 报警代码?\nE12"
    assert trim_quoted(text) == "已经换了\nE12"


def test_a_forward_is_kept_whole_because_the_forwarded_part_is_the_report() -> None:
    text = "请处理\n\n-----原始邮件-----\n发件人: 实验员\n发送时间: 今天\nSN-IVF-001 CO2 报警"
    assert trim_quoted(text, subject="转发: 培养箱报警") == text
    assert trim_quoted(text, subject="Fwd: incubator alarm") == text


def test_a_mail_that_is_all_quote_is_kept_as_it_was() -> None:
    text = "> SN-IVF-001 还是报警"
    assert trim_quoted(text) == text


def test_a_line_that_merely_starts_with_from_is_not_history() -> None:
    text = "From today the alarm sounds every hour.\nSerial SN-IVF-001"
    assert trim_quoted(text) == text


# --- attachments -------------------------------------------------------------------------------------------


def test_photos_and_pdfs_are_kept_by_their_bytes_and_other_files_named_in_a_note() -> None:
    msg = _message(body="见附件")
    msg.add_attachment(JPEG, maintype="image", subtype="jpeg", filename="显示屏 E12.jpg")  # RFC 2231 name
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment(b"PK\x03\x04 word", maintype="application", subtype="octet-stream", filename="记录.docx")
    msg.add_attachment(b"MZ\x90\x00 not a photo", maintype="image", subtype="jpeg", filename="photo.jpg")
    parsed = parse_mail(msg.as_bytes(), now=NOW)
    files = parsed.report.attachments
    assert [(f.filename, f.content_type, f.data) for f in files] == [
        ("显示屏 E12.jpg", "image/jpeg", JPEG), ("report.pdf", "application/pdf", PDF)]
    assert parsed.skipped == ("记录.docx", "photo.jpg")
    assert parsed.report.body.startswith("见附件\n\n[附件未保存") and "记录.docx" in parsed.report.body
    assert "attachments not kept" in parsed.report.body


def test_an_inline_photo_without_a_name_gets_one() -> None:
    msg = _message(body="截图如下")
    msg.add_alternative("<p>截图如下</p><img src='cid:shot'>", subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<shot>")
    [photo] = parse_mail(msg.as_bytes(), now=NOW).report.attachments
    assert photo.filename == "attachment-1.png" and photo.content_type == "image/png"


def test_an_rfc2047_encoded_attachment_name_is_decoded() -> None:
    word = b_word("现场照片.jpg", "gbk")
    raw = (f"From: a@b.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
           f"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
           f"--XX\r\nContent-Type: image/jpeg; name=\"{word}\"\r\nContent-Transfer-Encoding: base64\r\n"
           f"Content-Disposition: attachment; filename=\"{word}\"\r\n\r\n{base64.b64encode(JPEG).decode()}\r\n"
           f"--XX--\r\n").encode()
    [photo] = parse_mail(raw, now=NOW).report.attachments
    assert photo.filename == "现场照片.jpg" and photo.data == JPEG


def test_photos_over_the_ticket_limit_are_left_in_the_raw_mail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_module, "MAX_BYTES", 100)
    msg = _message(body="大图")
    msg.add_attachment(JPEG, maintype="image", subtype="jpeg", filename="big.jpg")
    parsed = parse_mail(msg.as_bytes(), now=NOW)
    assert parsed.report.attachments == () and parsed.skipped[0].startswith("big.jpg")


# --- loop guard -------------------------------------------------------------------------------------------

OWN = frozenset({"service@incucare.example.cn"})


@pytest.mark.parametrize(("headers", "subject", "verdict"), [
    ({}, "SN-IVF-001 报警", None),
    ({"Auto-Submitted": "no"}, "SN-IVF-001 报警", None),
    ({"From": "incucare <SERVICE@incucare.example.cn>"}, "[T2026-000001] 已收到", "discarded"),
    ({"X-Incucare-Notification": "notification-7"}, "[T2026-000001] 已收到", "discarded"),
    ({"Return-Path": "<>"}, "Undelivered", "discarded"),
    ({"Auto-Submitted": "auto-replied"}, "Re: [T2026-000001]", "discarded"),
    ({"Auto-Submitted": "Auto-Replied; owner-email=x@y"}, "Re: x", "discarded"),
    ({"X-Autoreply": "yes"}, "Re: x", "discarded"),
    ({"Precedence": "bulk"}, "newsletter", "discarded"),
    ({"Precedence": "junk"}, "x", "discarded"),
    ({"Precedence": "list"}, "x", "discarded"),
    ({"List-Id": "<lab.lists.example>"}, "x", "discarded"),
    ({}, "自动回复：培养箱报警", "discarded"),
    ({}, "Automatic reply: [T2026-000001]", "discarded"),
    ({}, "Out of Office: back Monday", "discarded"),
    ({}, "Undeliverable: 培养箱报警", "discarded"),
    ({"Auto-Submitted": "auto-generated"}, "Monitoring: CO2 low", "review"),
])
def test_loop_guard_verdicts(headers: dict[str, str], subject: str, verdict: str | None) -> None:
    fields = dict(headers)
    sender = fields.pop("From", "wang@ivf.example.cn")
    msg = _message(subject=subject, From=sender, **{k.replace("-", "_"): v for k, v in fields.items()})
    held = loop_guard(parse_mail(msg.as_bytes(), now=NOW), OWN)
    assert (held.status if held else None) == verdict
    if held is not None:
        assert held.en and held.zh


def test_delivery_reports_are_recognised_by_their_type() -> None:
    raw = (b"From: MAILER-DAEMON@ivf.example.cn\r\nSubject: failure notice\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n--R\r\n"
           b"Content-Type: text/plain\r\n\r\nCould not deliver\r\n--R\r\nContent-Type: message/delivery-status\r\n\r\n"
           b"Reporting-MTA: dns; ivf.example.cn\r\n--R--\r\n")
    held = loop_guard(parse_mail(raw, now=NOW), OWN)
    assert held is not None and held.status == "discarded"
