"""``/wechat/callback``: the server URL configured in the WeChat Official Account console.

GET verifies the URL (echo ``echostr``); POST receives pushed messages and answers with a passive XML
reply or ``success``. Every request is checked first: a wrong signature or a stale timestamp is a 403
and writes nothing. WeChat reads plain bodies, not our JSON error shape, so errors here are plain text.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from incucare.adapters.wechat import intake
from incucare.adapters.wechat.protocol import (
    MAX_BODY_BYTES,
    SUCCESS,
    MalformedMessage,
    check_signature,
    is_fresh,
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


@router.post("/wechat/callback", response_class=PlainTextResponse)
async def receive_push(request: Request, uow: UowDep, now: NowDep, signature: str = "", timestamp: str = "",
                       nonce: str = "", openid: str = "") -> Response:
    """One pushed message or event: signature first, then parse, act, commit and reply.

    A retry of the same MsgId gets the same reply, because the reply is built from what was stored.
    """
    refused = _refusal(request, signature, timestamp, nonce, now)
    if refused is not None:
        return refused
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return PlainTextResponse("消息过大 / message too large", status_code=413)
    body = await request.body()
    try:
        message = parse_message(body)
    except MalformedMessage as exc:
        log.warning("wechat push refused: %s", exc)
        return PlainTextResponse(f"无法解析的消息 / unreadable message: {exc}", status_code=400)
    if openid and openid != message.from_user:
        log.warning("wechat push refused: openid %r in the URL but %r in the body", openid, message.from_user)
        return PlainTextResponse(FORBIDDEN, status_code=403)
    settings: Settings = request.app.state.settings

    def act() -> str | None:
        reply = intake.handle(uow.session, message, now=now, raw=body.decode("utf-8", errors="replace"),
                              bind_requires_serial=settings.wechat_bind_requires_serial)
        uow.commit()
        return reply

    reply = await run_in_threadpool(act)
    if reply is None:
        return PlainTextResponse(SUCCESS)
    return Response(text_reply(message, reply, now), media_type="application/xml")
