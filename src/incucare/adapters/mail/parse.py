"""Raw RFC 5322 bytes → an ``InboundReport`` for the intake service.

Lab staff write from Outlook, Foxmail, QQ Mail, NetEase and phones: headers in RFC 2047 encoded words
(often ``GB2312``-labelled but really GBK), bodies in GBK/GB18030 or UTF-8, sometimes unlabelled 8-bit,
HTML-only mails, a photo of the display pasted inline, and the whole earlier conversation quoted below
the two lines that matter. This module reads all of that with the standard library only:

* the sender (address and decoded display name), the decoded subject and the Message-ID (the intake's
  idempotency key; without one, the SHA-256 of the raw bytes stands in);
* the text/plain body, or the text/html body rendered to readable text (``html.parser``);
* quoted history trimmed (``-----原始邮件-----``, ``On … wrote:``, ``… 写道：``, ``发件人:`` header blocks,
  ``>`` lines); forwarded mails (``Fw:``/``转发:``) are kept whole, since the forwarded part is the report;
* photos and PDFs as ``NewAttachment`` (recognised by their bytes, as the ticket store requires); other
  files are named in a note at the end of the body, and stay in the raw message;
* the headers the loop guard needs, first occurrence of each, decoded.

The Date header is not trusted for the received time (sender clocks are wrong surprisingly often): the
caller passes ``now``; the header stays in ``raw``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.utils import parseaddr
from html.parser import HTMLParser

from incucare.domain.model import Channel
from incucare.services.attachments import MAX_BYTES, NewAttachment, sniff
from incucare.services.inbound import InboundReport

__all__ = ["ParsedMail", "decode_bytes", "decode_header_text", "html_to_text", "parse_mail", "trim_quoted"]

_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "euc-cn": "gb18030",
    "csgb2312": "gb18030", "gb_2312-80": "gb18030", "x-euc-cn": "gb18030", "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8", "big5-hkscs": "big5hkscs",
}
"""Labels Chinese mail clients use for what is really GBK (a subset of GB18030) and a few misspellings."""
_NO_CHARSET = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default", "charset"})
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedMail:
    """One received e-mail: the channel-neutral report plus what the loop guard and the log need."""

    report: InboundReport
    headers: dict[str, str] = field(default_factory=dict)
    """First occurrence of every header, lower-cased name → decoded value."""
    content_type: str = "text/plain"
    skipped: tuple[str, ...] = ()
    """Attachments that were not kept (not a photo or PDF, or too large), for the note and the log."""

    def header(self, name: str) -> str:
        """The decoded value of header ``name`` (any case), or ``""`` when absent."""
        return self.headers.get(name.lower(), "")

    def has_header(self, name: str) -> bool:
        """Whether the header is present at all (``Return-Path: <>`` is present and empty)."""
        return name.lower() in self.headers


# ---------------------------------------------------------------- decoding


def _codec(charset: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None when unknown or absent."""
    if charset is None:
        return None
    label = charset.strip().strip("\"'").split("*", 1)[0].lower()
    if label in _NO_CHARSET:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from bytes: UTF-8 if the bytes are valid UTF-8, else the declared charset, else GB18030, else
    with replacements.

    Chinese mail often declares ``us-ascii`` or nothing and sends GBK, or declares GBK and sends UTF-8.
    Valid UTF-8 is tried first because GB18030 accepts almost any byte sequence (UTF-8 read as GB18030
    is mojibake without an error), while real GBK text is practically never valid UTF-8.
    """
    declared = _codec(charset)
    for name in dict.fromkeys(c for c in ("utf-8", declared, "gb18030") if c):
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            continue
    return data.decode(declared or "utf-8", errors="replace")


def _restore_8bit(value: str) -> str:
    """Header text the parser kept as surrogate escapes (raw 8-bit bytes) decoded as text."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode_bytes(value.encode("ascii", "surrogateescape"))
    return value


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            return base64.b64decode(payload + "=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload.replace("_", " ").encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return None


def decode_header_text(value: object) -> str:
    """A header value as one line of text, with RFC 2047 encoded words decoded (any charset, broken ones too).

    Adjacent encoded words in the same charset are joined before decoding, because some clients split a
    multi-byte character across two words; whitespace between encoded words is dropped as RFC 2047 says.
    """
    if value is None:
        return ""
    text = _restore_8bit(str(value))
    pieces: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    last_end = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            pieces.append(decode_bytes(b"".join(pending), pending_charset))
        pending, pending_charset = [], None

    for match in _ENCODED_WORD.finditer(text):
        between = text[last_end:match.start()]
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            continue  # not a valid encoded word: it stays in the text as it was written
        if between.strip() or not pending:
            flush()
            pieces.append(between)
        charset = match.group(1)
        if pending and _codec(charset) != _codec(pending_charset):
            flush()
        pending.append(data)
        pending_charset = charset
        last_end = match.end()
    flush()
    pieces.append(text[last_end:])
    return _WHITESPACE.sub(" ", "".join(pieces)).strip()


def _raw_text(raw: bytes) -> str:
    """The raw message as storable text: UTF-8 or GB18030 when it is that, else Latin-1 (byte for byte)."""
    for name in ("utf-8", "gb18030"):
        try:
            return raw.decode(name).replace("\x00", "\ufffd")
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1").replace("\x00", "\ufffd")


# ---------------------------------------------------------------- HTML


class _HtmlText(HTMLParser):
    """Readable text from an HTML mail: block elements become line breaks, scripts and quotes disappear."""

    BLOCKS = frozenset({"p", "div", "tr", "li", "ul", "ol", "table", "section", "article", "header", "footer",
                        "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "dt", "dd", "address", "center"})
    HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})
    QUOTE_MARKS = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "divrplyfwdmsg", "appendonsend",
                   "ntes-mailmaster-quote", "qmquote", "reference")

    def __init__(self, *, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []
        self.pre = 0

    def _hidden(self) -> bool:
        return any(hide for _tag, hide in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
            return
        marks = " ".join((value or "") for name, value in attrs if name in ("class", "id")).lower()
        quote = self.drop_quotes and (tag == "blockquote" or any(m in marks for m in self.QUOTE_MARKS))
        if tag in self.HIDDEN or tag in ("div", "blockquote", "span"):
            self.stack.append((tag, tag in self.HIDDEN or quote))
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCKS or tag == "blockquote":
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("• ")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" or tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN or tag in ("div", "blockquote", "span"):
            for index in range(len(self.stack) - 1, -1, -1):
                if self.stack[index][0] == tag:
                    del self.stack[index:]
                    break
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in self.BLOCKS or tag == "blockquote":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden():
            return
        self.parts.append(data if self.pre else _WHITESPACE.sub(" ", data))


def html_to_text(html: str, *, drop_quotes: bool = True) -> str:
    """Readable plain text from an HTML body (quoted earlier messages dropped unless told otherwise)."""
    parser = _HtmlText(drop_quotes=drop_quotes)
    parser.feed(html)
    parser.close()
    # mail editors put every line in its own block (<div>, <p>): one line break per block reads best
    return _tidy(re.sub(r"\n[ \t\xa0]*(?:\n[ \t\xa0]*)+", "\n", "".join(parser.parts)))


def _tidy(text: str) -> str:
    """Lines without trailing blanks or non-breaking spaces, at most one empty line in a row."""
    lines = [line.replace("\xa0", " ").replace("\u200b", "").rstrip() for line in text.replace("\r\n", "\n")
             .replace("\r", "\n").split("\n")]
    tidy: list[str] = []
    for line in lines:
        if not line.strip() and (not tidy or not tidy[-1].strip()):
            continue
        tidy.append(line.strip() if not line.strip() else line)
    return "\n".join(tidy).strip()


# ---------------------------------------------------------------- quoted history

_SEPARATOR = re.compile(r"^\s*-{2,}\s*(原始邮件|邮件原件|原邮件|Original Message|Original)\s*-{2,}\s*$", re.IGNORECASE)
_RULE = re.compile(r"^\s*_{10,}\s*$")
_HEADER_START = re.compile(r"^\s*\*?\s*(发件人|寄件者|From)\s*\*?\s*[:：]", re.IGNORECASE)
_HEADER_NEXT = re.compile(
    r"^\s*\*?\s*(发送时间|发送日期|时间|日期|收件人|抄送|主题|Sent|Date|To|Cc|Subject)\s*\*?\s*[:：]", re.IGNORECASE)
_WROTE = re.compile(r"(\bwrote|写道)\s*[:：]\s*$", re.IGNORECASE)
_WROTE_START = re.compile(r"^\s*(On\s|在\s*\d|\S.{0,80}于\s*\d{4})", re.IGNORECASE)
_FORWARD = re.compile(r"^\s*(fw|fwd|转发)\s*[:：]", re.IGNORECASE)


def _cut_at(lines: list[str]) -> int | None:
    """Index of the first line where quoted history begins, or None."""
    for index, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return index
        following = [item for item in lines[index + 1:index + 6] if item.strip()]
        if _RULE.match(line) and following and _HEADER_START.match(following[0]):
            return index
        if _HEADER_START.match(line) and any(_HEADER_NEXT.match(item) for item in following[:4]):
            return index
        if len(line) < 300 and _WROTE_START.match(line):
            if _WROTE.search(line):
                return index
            if index + 1 < len(lines) and len(lines[index + 1]) < 200 and _WROTE.search(lines[index + 1]):
                return index
    return None


def trim_quoted(text: str, *, subject: str = "") -> str:
    """The new part of a reply: quoted history and ``>`` lines removed; forwards are kept whole.

    When trimming would leave nothing (someone wrote only inside the quote), the text is kept as it was.
    """
    text = _tidy(text)
    if _FORWARD.match(subject):
        return text
    lines = text.split("\n")
    cut = _cut_at(lines)
    if cut is not None:
        lines = lines[:cut]
    kept = _tidy("\n".join(line for line in lines if not line.lstrip().startswith(">")))
    return kept or text


# ---------------------------------------------------------------- the message


def _headers(message: Message) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in message.raw_items():
        key = name.strip().lower()
        if key not in found:
            found[key] = decode_header_text(value)
    return found


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def _filename(part: Message) -> str:
    name = part.get_filename() or part.get_param("name") or ""
    if not isinstance(name, str):
        name = str(name)
    return decode_header_text(name).replace("/", "_").replace("\\", "_")[:255]


_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
               "image/heic": "heic", "application/pdf": "pdf"}


def _message_id(message_id: str, raw: bytes) -> str:
    cleaned = message_id.strip().strip("<>").strip()
    if not cleaned:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    if len(cleaned) > 200:
        return "sha256:" + hashlib.sha256(cleaned.encode("utf-8", "replace")).hexdigest()
    return cleaned


def _skipped_note(skipped: list[str]) -> str:
    names = "、".join(skipped)
    return (f"[附件未保存(仅接受照片和 PDF,单个不超过 {MAX_BYTES // (1024 * 1024)} MB):{names} / "
            f"attachments not kept (photos and PDF up to {MAX_BYTES // (1024 * 1024)} MB only): {names}]")


def parse_mail(raw: bytes, *, now: datetime) -> ParsedMail:
    """Read one e-mail as received (RFC 5322 bytes) into a report received at ``now``."""
    message = message_from_bytes(raw)
    headers = _headers(message)
    subject = headers.get("subject", "")
    from_raw = next((value for name, value in message.raw_items() if name.lower() == "from"), "")
    name_raw, address = parseaddr(_restore_8bit(str(from_raw)))
    plain: str | None = None
    html: str | None = None
    attachments: list[NewAttachment] = []
    skipped: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = _filename(part)
        if kind == "text/plain" and disposition != "attachment" and not filename:
            if plain is None:
                plain = _part_text(part)
            continue
        if kind == "text/html" and disposition != "attachment" and not filename:
            if html is None:
                html = _part_text(part)
            continue
        if kind.startswith("multipart/") or kind in ("message/delivery-status", "message/disposition-notification"):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        sniffed = sniff(data)
        label = filename or kind
        if sniffed is None:
            skipped.append(label)
        elif len(data) > MAX_BYTES:
            skipped.append(f"{label} ({len(data) // (1024 * 1024)} MB)")
        else:
            name = filename or f"attachment-{len(attachments) + 1}.{_EXTENSIONS[sniffed]}"
            attachments.append(NewAttachment(filename=name, content_type=sniffed, data=data))
    forwarded = bool(_FORWARD.match(subject))
    if plain is not None and plain.strip():
        body = trim_quoted(plain, subject=subject)
    elif html is not None:
        body = trim_quoted(html_to_text(html, drop_quotes=not forwarded), subject=subject)
    else:
        body = ""
    if skipped:
        body = f"{body}\n\n{_skipped_note(skipped)}".strip()
    report = InboundReport(
        channel=Channel.EMAIL, external_id=_message_id(headers.get("message-id", ""), raw),
        sender=address.strip(), sender_name=decode_header_text(name_raw), received_at=now, body=body,
        subject=subject, raw=_raw_text(raw), attachments=tuple(attachments),
    )
    return ParsedMail(report=report, headers=headers, content_type=message.get_content_type(),
                      skipped=tuple(skipped))
