"""Chat-robot webhooks: JSON POSTs in the shapes WeCom (企业微信) and DingTalk (钉钉) group robots accept.

Both robots answer HTTP 200 even when they refuse a message and put the verdict in the body as
``{"errcode": 0, "errmsg": "ok"}``; a non-zero ``errcode`` (93000 invalid key, 45009 rate limit ...)
is therefore a failure to retry, not a success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from incucare.adapters.notify import DeliveryError

KINDS = ("wecom", "dingtalk", "generic")
WECOM_MARKDOWN_MAX_BYTES = 4096
"""WeCom rejects markdown content longer than 4096 UTF-8 bytes; we cut the body rather than lose it all."""


def _cut_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - len("…".encode())].decode("utf-8", errors="ignore") + "…"


def robot_payload(kind: str, *, subject: str, body: str, template: str, ticket_id: int | None,
                  critical: bool, context: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document for one endpoint kind; ``generic`` carries the raw context for integrations."""
    if kind == "wecom":
        return {"msgtype": "markdown",
                "markdown": {"content": _cut_utf8(f"**{subject}**\n\n{body}", WECOM_MARKDOWN_MAX_BYTES)}}
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": subject, "text": f"### {subject}\n\n{body}"}}
    if kind == "generic":
        return {"subject": subject, "body": body, "template": template, "ticket_id": ticket_id,
                "critical": critical, "payload": dict(context)}
    raise ValueError(f"unknown webhook kind '{kind}' (use one of {', '.join(KINDS)})")


class HttpWebhookSender:
    """POSTs JSON with httpx; success is a 2xx answer whose JSON body, if any, has no non-zero errcode."""

    def __init__(self, *, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.timeout_s = timeout_s
        self._transport = transport

    def post(self, url: str, payload: Mapping[str, object]) -> None:
        """Send one document; the URL (which holds the robot's key) never appears in error messages."""
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self._transport, follow_redirects=False) as client:
                response = client.post(url, json=dict(payload))
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook request failed: {type(exc).__name__}: {exc}") from exc
        snippet = response.text[:300]
        if not response.is_success:
            raise DeliveryError(f"webhook answered HTTP {response.status_code}: {snippet}")
        if not response.content.strip():
            return
        try:
            answer = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if isinstance(answer, dict):
            errcode = answer.get("errcode", 0)
            if errcode not in (0, "0", None):
                raise DeliveryError(f"webhook refused the message: errcode {errcode}: {answer.get('errmsg', '')}")
