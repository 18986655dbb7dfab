"""The WeChat Official Account push protocol, as pure functions (safe mode's AES layer is in ``crypto``).

WeChat's servers call our callback URL with ``signature``, ``timestamp`` and ``nonce`` in the query string;
the signature is the SHA-1 of the token, timestamp and nonce sorted as strings and concatenated. A GET
with ``echostr`` verifies the URL when an administrator saves the server settings; a POST carries one
message or event as XML, and we answer within 5 seconds with a passive XML reply, or the plain text
``success`` when there is nothing to say. Nothing here does I/O or reads the clock: time is passed in.

XML arrives from the internet, so it is parsed with ``defusedxml`` with DTDs forbidden: entity
expansion ("billion laughs") and external entities are refused instead of expanded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

FRESHNESS_WINDOW_S = 300
"""A request whose timestamp is further than this from our clock is a replay (or a broken clock): 403."""
MAX_BODY_BYTES = 64 * 1024
"""WeChat messages are small (text up to 2048 bytes); anything far larger is not from WeChat."""
MAX_REPLY_BYTES = 2048
"""WeChat cuts passive text replies longer than this (UTF-8 bytes), so we cut them ourselves, cleanly."""
SUCCESS = "success"
"""The plain-text answer that tells WeChat "received, nothing to reply" (it then does not retry)."""
_MAX_PARAM = 64

TEXT, IMAGE, VOICE, EVENT = "text", "image", "voice", "event"
SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"


class MalformedMessage(ValueError):
    """The body is not a WeChat push message we can read (bad XML, a DTD or entities, missing fields)."""


def sign(token: str, timestamp: str, nonce: str) -> str:
    """The signature WeChat computes: sha1 of the lexicographically sorted token, timestamp and nonce."""
    joined = "".join(sorted((token, timestamp, nonce)))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def check_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """True when ``signature`` is WeChat's for these values; compared in constant time."""
    if not token or not signature or len(timestamp) > _MAX_PARAM or len(nonce) > _MAX_PARAM:
        return False
    expected = sign(token, timestamp, nonce)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8"))


def is_fresh(timestamp: str, now: datetime, window_s: int = FRESHNESS_WINDOW_S) -> bool:
    """True when the Unix ``timestamp`` lies within ``window_s`` seconds of ``now`` (either side).

    A signed URL stays valid for anyone who captured it; refusing old timestamps bounds how long a
    captured request can be replayed.
    """
    value = timestamp.strip()
    if not value.isdigit() or len(value) > 12:
        return False
    return abs(now.timestamp() - int(value)) <= window_s


@dataclass(frozen=True)
class PushedMessage:
    """One message or event pushed by WeChat; field names follow the XML elements."""

    to_user: str
    """Our account's original id (``gh_…``)."""
    from_user: str
    """The follower's OpenID for this account."""
    create_time: int
    msg_type: str
    msg_id: str = ""
    content: str = ""
    pic_url: str = ""
    media_id: str = ""
    format: str = ""
    recognition: str = ""
    event: str = ""
    event_key: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    """Every top-level element as text, for message types we do not model."""

    @property
    def is_event(self) -> bool:
        """Events (subscribe, menu clicks…) carry no MsgId and are not fault reports."""
        return self.msg_type == EVENT

    @property
    def dedupe_id(self) -> str:
        """WeChat's retry key: MsgId for messages, FromUserName + CreateTime for events (as its docs say)."""
        if self.msg_id:
            return self.msg_id
        return f"{self.from_user}:{self.create_time}:{self.event}"

    @property
    def created_at(self) -> datetime:
        """CreateTime as an aware UTC datetime."""
        return datetime.fromtimestamp(self.create_time, tz=UTC)

    def intake_text(self) -> str:
        """The message as text for a ticket or the review queue, saying what could not be kept.

        Pictures and voice stay on WeChat's servers (3 days) and need an access token to download, which
        this installation does not have; the text says so, so that nobody looks for an attachment.
        """
        if self.msg_type == TEXT:
            return self.content.strip()
        if self.msg_type == IMAGE:
            return (f"[图片 / picture] PicUrl: {self.pic_url} MediaId: {self.media_id}\n"
                    "(图片未下载:本系统不从微信服务器下载媒体,请向客户索取或在公众号后台查看 / the picture was not "
                    "downloaded: this system does not fetch media from WeChat; ask the customer or open it in the "
                    "Official Account console)")
        if self.msg_type == VOICE:
            heard = self.recognition.strip()
            note = (f"[语音 / voice] MediaId: {self.media_id} ({self.format})\n"
                    "(语音未下载 / the recording was not downloaded)")
            return f"{heard}\n{note}" if heard else f"{note}\n(无语音识别结果 / no speech recognition text)"
        details = " ".join(f"{k}: {v}" for k, v in self.fields.items()
                           if k not in ("ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId"))
        return f"[{self.msg_type}] {details}".strip()


def _text(root: Element, tag: str) -> str:
    found = root.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _root(body: bytes | str) -> Element:
    """The ``<xml>`` root of a body from the internet: no DTD, no entities, no external references."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise MalformedMessage(f"message larger than {MAX_BODY_BYTES} bytes")
    try:
        root: Element = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedMessage(f"refused XML construct: {type(exc).__name__}") from exc
    except ParseError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedMessage(f"root element is <{root.tag}>, expected <xml>")
    return root


def parse_envelope(body: bytes | str) -> str:
    """The ciphertext (``Encrypt``) of a safe-mode or compatibility-mode push; decrypt it with ``crypto``."""
    encrypted = _text(_root(body), "Encrypt")
    if not encrypted:
        raise MalformedMessage("Encrypt is required in safe mode")
    return encrypted


def parse_message(body: bytes | str) -> PushedMessage:
    """Read one pushed XML message; raises ``MalformedMessage`` for anything WeChat would not send."""
    root = _root(body)
    fields = {child.tag: (child.text or "").strip() for child in root if len(child) == 0}
    to_user, from_user = _text(root, "ToUserName"), _text(root, "FromUserName")
    msg_type, created = _text(root, "MsgType").lower(), _text(root, "CreateTime")
    if not (to_user and from_user and msg_type):
        raise MalformedMessage("ToUserName, FromUserName and MsgType are required")
    if len(from_user) > _MAX_PARAM or len(to_user) > _MAX_PARAM:
        raise MalformedMessage("ToUserName and FromUserName have at most 64 characters")
    if not created.isdigit() or len(created) > 12:
        raise MalformedMessage("CreateTime must be a Unix timestamp")
    msg_id = _text(root, "MsgId")
    if msg_type != EVENT and not msg_id:
        raise MalformedMessage("MsgId is required for messages")
    return PushedMessage(
        to_user=to_user, from_user=from_user, create_time=int(created), msg_type=msg_type, msg_id=msg_id[:64],
        content=fields.get("Content", ""), pic_url=fields.get("PicUrl", ""), media_id=fields.get("MediaId", ""),
        format=fields.get("Format", ""), recognition=fields.get("Recognition", ""),
        event=fields.get("Event", "").lower(), event_key=fields.get("EventKey", ""), fields=fields,
    )


def cdata(text: str) -> str:
    """``text`` inside CDATA; a ``]]>`` in the text is split across two sections so it cannot close early."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - len(" …".encode())].decode("utf-8", errors="ignore") + " …"


def text_reply(message: PushedMessage, content: str, now: datetime) -> str:
    """The passive reply to ``message``: a text message from our account back to the follower.

    ToUserName and FromUserName are swapped, CreateTime is ``now``; control characters XML 1.0 cannot
    carry are dropped, and the content is cut to what WeChat shows.
    """
    clean = "".join(ch for ch in content if ch in "\n\t" or ord(ch) >= 0x20)
    return (
        "<xml>"
        f"<ToUserName>{cdata(message.from_user)}</ToUserName>"
        f"<FromUserName>{cdata(message.to_user)}</FromUserName>"
        f"<CreateTime>{int(now.timestamp())}</CreateTime>"
        f"<MsgType>{cdata(TEXT)}</MsgType>"
        f"<Content>{cdata(_cut(clean, MAX_REPLY_BYTES))}</Content>"
        "</xml>"
    )
