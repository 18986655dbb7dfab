"""``/wechat/callback``: the server URL configured in the WeChat Official Account console.

GET verifies the URL (echo ``echostr``); POST receives pushed messages and answers with a passive XML
reply or ``success``. Every request is checked first: a wrong signature or a stale timestamp is a 403
and writes nothing. With an EncodingAESKey configured (safe or compatibility mode) only encrypted pushes
with a valid ``msg_signature`` are accepted, and replies are encrypted too. WeChat reads plain bodies,
not our JSON error shape, so errors here are plain text.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from incucare.adapters.wechat import intake
from incucare.adapters.wechat.crypto import CryptoError, MessageCrypto
from incucare.adapters.wechat.protocol import (
    MAX_BODY_BYTES,
    SUCCESS,
    MalformedMessage,
    PushedMessage,
    check_signature,
    is_fresh,
    parse_envelope,
    parse_message,
    text_reply,
)
from incucare.config import Settings
from incucare.web.deps import NowDep, UowDep

log = logging.getLogger("incucare.wechat")
router = APIRouter(tags=["wechat"])

NOT_CONFIGURED = ("微信公众号未配置(请设置 INCUCARE_WECHAT_TOKEN) / "
                  "WeChat is not configured: set INCUCARE_WECHAT_TOKEN")
FORBIDDEN = "签名无效或请求已过期 / invalid signature or expired request"
SAFE_MODE_ONLY = "已启用安全模式,拒绝明文消息 / safe mode is configured: plaintext pushes are refused"
SAFE_MODE_NOT_CONFIGURED = ("安全模式需要 INCUCARE_WECHAT_ENCODING_AES_KEY 和 INCUCARE_WECHAT_APP_ID / "
                            "safe mode needs INCUCARE_WECHAT_ENCODING_AES_KEY and INCUCARE_WECHAT_APP_ID")


def _refusal(request: Request, signature: str, timestamp: str, nonce: str, now: datetime) -> Response | None:
    """503 when WeChat is not configured, 403 for a bad signature or a stale timestamp, else None."""
    settings: Settings = request.app.state.settings
    if settings.wechat_token is None:
        return PlainTextResponse(NOT_CONFIGURED, status_code=503)
    token = settings.wechat_token.get_secret_value()
    if not check_signature(token, signature, timestamp, nonce):
        log.warning("wechat %s refused: bad signature", request.method)
        return PlainTextResponse(FORBIDDEN, status_code=403)
    if not is_fresh(timestamp, now, settings.wechat_timestamp_window_s):
        log.warning("wechat %s refused: timestamp %r outside the window", request.method, timestamp)
        return PlainTextResponse(FORBIDDEN, status_code=403)
    return None


@router.get("/wechat/callback", response_class=PlainTextResponse)
def verify_url(request: Request, now: NowDep, signature: str = "", timestamp: str = "", nonce: str = "",
               echostr: str = "") -> Response:
    """URL verification: WeChat accepts the server URL only if we echo ``echostr`` for a valid signature."""
    refused = _refusal(request, signature, timestamp, nonce, now)
    if refused is not None:
        return refused
    return PlainTextResponse(echostr)


def _crypto(settings: Settings) -> MessageCrypto | None:
    """The safe-mode cipher when the EncodingAESKey and the AppID are both configured."""
    if settings.wechat_token is None or settings.wechat_encoding_aes_key is None or not settings.wechat_app_id:
        return None
    return MessageCrypto(settings.wechat_token.get_secret_value(),
                         settings.wechat_encoding_aes_key.get_secret_value(), settings.wechat_app_id)


def _open(settings: Settings, body: bytes, *, encrypt_type: str, msg_signature: str, timestamp: str,
          nonce: str) -> tuple[PushedMessage, bytes, MessageCrypto | None] | Response:
    """The pushed message (and its plaintext XML), decrypted in safe mode; or the refusal to send."""
    crypto = _crypto(settings)
    if encrypt_type.lower() != "aes":
        if settings.wechat_encoding_aes_key is not None:
            log.warning("wechat push refused: plaintext while safe mode is configured")
            return PlainTextResponse(SAFE_MODE_ONLY, status_code=403)
        return parse_message(body), body, None
    if crypto is None:
        return PlainTextResponse(SAFE_MODE_NOT_CONFIGURED, status_code=503)
    encrypted = parse_envelope(body)
    if not crypto.check(msg_signature, timestamp, nonce, encrypted):
        log.warning("wechat push refused: bad msg_signature")
        return PlainTextResponse(FORBIDDEN, status_code=403)
    try:
        inner = crypto.decrypt(encrypted)
    except CryptoError as exc:
        log.warning("wechat push refused: %s", exc)
        return PlainTextResponse(FORBIDDEN, status_code=403)
    return parse_message(inner), inner, crypto


@router.post("/wechat/callback", response_class=PlainTextResponse)
async def receive_push(request: Request, uow: UowDep, now: NowDep, signature: str = "", timestamp: str = "",
                       nonce: str = "", openid: str = "", encrypt_type: str = "",
                       msg_signature: str = "") -> Response:
    """One pushed message or event: signatures first, then parse (decrypt in safe mode), act, commit, reply.

    A retry of the same MsgId gets the same reply, because the reply is built from what was stored.
    """
    refused = _refusal(request, signature, timestamp, nonce, now)
    if refused is not None:
        return refused
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return PlainTextResponse("消息过大 / message too large", status_code=413)
    body = await request.body()
    settings: Settings = request.app.state.settings
    try:
        opened = _open(settings, body, encrypt_type=encrypt_type, msg_signature=msg_signature, timestamp=timestamp,
                       nonce=nonce)
    except MalformedMessage as exc:
        log.warning("wechat push refused: %s", exc)
        return PlainTextResponse(f"无法解析的消息 / unreadable message: {exc}", status_code=400)
    if isinstance(opened, Response):
        return opened
    message, xml, crypto = opened
    if openid and openid != message.from_user:
        log.warning("wechat push refused: openid %r in the URL but %r in the body", openid, message.from_user)
        return PlainTextResponse(FORBIDDEN, status_code=403)

    def act() -> str | None:
        reply = intake.handle(uow.session, message, now=now, raw=xml.decode("utf-8", errors="replace"),
                              bind_requires_serial=settings.wechat_bind_requires_serial)
        uow.commit()
        return reply

    reply = await run_in_threadpool(act)
    if reply is None:
        return PlainTextResponse(SUCCESS)
    answer = text_reply(message, reply, now)
    if crypto is not None:
        answer = crypto.wrap_reply(answer, str(int(now.timestamp())), secrets.token_hex(5))
    return Response(answer, media_type="application/xml")
