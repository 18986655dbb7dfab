"""What every page needs: the logged-in actor, the language, a translator, CSRF protection, flashes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from incucare.adapters.db.tables import User
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.errors import DomainError, NotFound
from incucare.domain.labels import LabelledEnum
from incucare.domain.model import (
    Channel,
    ContractKind,
    CustomerKind,
    DeviceStatus,
    EventKind,
    Priority,
    Queue,
    Role,
    TicketStatus,
    Tier,
)
from incucare.services.auth import actor_for
from incucare.services.context import Actor
from incucare.web.deps import get_uow
from incucare.web.errors import PageRedirect
from incucare.web.i18n import pick_language, translate_or, translator

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
LANG_COOKIE = "incucare_lang"
LABELS: dict[str, type[LabelledEnum]] = {
    "status": TicketStatus, "channel": Channel, "priority": Priority, "customer_kind": CustomerKind,
    "contract_kind": ContractKind, "device_status": DeviceStatus, "role": Role, "queue": Queue,
    "event": EventKind,
}


def switch_language_href(request: Request, lang: str) -> str:
    """The same page in the other language: every current query parameter is kept, only ``lang`` changes,
    so switching language never loses the filters or the page of a list."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", "zh" if lang == "en" else "en"))
    return f"{request.url.path}?{urlencode(params)}"


TEMPLATES.env.globals["switch_language_href"] = switch_language_href


class CsrfFailed(Exception):
    """A form was posted without the token of the session that rendered it."""


def session_login(request: Request, user: User) -> None:
    """Remember the user in the signed session cookie, bound to the current password hash."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["pw"] = user.password_hash[-12:]
    request.session["csrf"] = secrets.token_urlsafe(24)


def session_user(request: Request, uow: UnitOfWork) -> User | None:
    """The active user of the session cookie, or None (a password change logs every session out)."""
    uid = request.session.get("uid")
    if uid is None:
        return None
    user = uow.session.get(User, uid)
    if user is None or not user.active or user.password_hash[-12:] != request.session.get("pw"):
        request.session.clear()
        return None
    return user


def csrf_token(request: Request) -> str:
    """The session's anti-forgery token (created on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form post whose token does not match the session's."""
    expected = request.session.get("csrf")
    if not expected or not submitted or not secrets.compare_digest(str(expected), submitted):
        raise CsrfFailed()


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """Queue a one-time message for the next page."""
    # assign a new list: an in-place append to the stored one would not mark the session as changed
    request.session["flash"] = [*request.session.get("flash", []), {"kind": kind, "message": message}]


@dataclass
class Page:
    """Per-request page state."""

    request: Request
    uow: UnitOfWork
    actor: Actor
    lang: str
    zone: ZoneInfo

    def t(self, key: str, **values: Any) -> str:
        """Translate a UI string."""
        return translator(self.lang)(key, **values)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Render a template with the shared context."""
        flashes = self.request.session.pop("flash", [])
        response = TEMPLATES.TemplateResponse(
            self.request, template,
            {"page": self, "t": self.t, "lang": self.lang, "actor": self.actor, "flashes": flashes,
             "csrf": csrf_token(self.request), "local": self.local, "label": self.label,
             "code_label": self.code_label, "tier": self.tier, **context},
            status_code=status_code,
        )
        if self.request.query_params.get("lang") in ("zh", "en"):
            response.set_cookie(LANG_COOKIE, self.lang, max_age=365 * 24 * 3600, samesite="lax")
        return response

    def label(self, kind: str, value: str | None) -> str:
        """The zh/en label of a stored code (``label("status", "on_site")``); unknown codes show as-is."""
        if value is None:
            return ""
        enum = LABELS[kind]
        member = enum._value2member_map_.get(value)
        return member.label(self.lang) if isinstance(member, LabelledEnum) else value

    def code_label(self, group: str, code: str) -> str:
        """The zh/en label of a free-form code kept in the data (``code_label("visit", "repair")`` → 维修),
        from the UI catalogue's ``group.code`` key; a code the catalogue does not know yet shows as-is."""
        return translate_or(self.lang, f"{group}.{code}", code)

    def tier(self, value: int) -> str:
        """The zh/en label of a tier number."""
        return Tier(value).label(self.lang)

    def local(self, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A UTC time shown in the service organisation's time zone."""
        return value.astimezone(self.zone).strftime(fmt) if value else ""


def request_language(request: Request, user_language: str | None = None) -> str:
    """The language for this request: ``?lang=``, then the cookie, then the user's preference, then zh."""
    default = user_language or request.app.state.settings.default_language
    return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), default)


def current_page(request: Request, uow: Annotated[UnitOfWork, Depends(get_uow)]) -> Page:
    """The page state of a logged-in user; anonymous visitors are sent to the login page."""
    user = session_user(request, uow)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise PageRedirect(f"/login?next={quote(target)}")
    return Page(request=request, uow=uow, actor=actor_for(user), lang=request_language(request, user.language),
                zone=request.app.state.settings.zone)


PageDep = Annotated[Page, Depends(current_page)]


def in_language(request: Request, path: str, anchor: str = "") -> str:
    """``path`` in the language the page was asked in, so the zh/en switch survives a redirect."""
    lang = request.query_params.get("lang")
    suffix = f"?{urlencode({'lang': lang})}" if lang in ("zh", "en") else ""
    return f"{path}{suffix}{'#' + anchor if anchor else ''}"


def act(page: Page, csrf: str | None, back: str, action: Callable[[], object], done: str = "", *,
        missing_is_404: bool = False) -> RedirectResponse:
    """Run one change posted from a page and go back to ``back`` (redirect after POST).

    The CSRF token is checked, the service call made and committed; the message the action returns (or
    ``done``) is flashed, a refusal is flashed instead with nothing written, so refreshing never re-posts
    and switching language stays on a page that answers GET. With ``missing_is_404`` a record the caller
    may not see is the 404 page, not a flash.
    """
    try:
        check_csrf(page.request, csrf)
        result = action()
        page.uow.commit()
    except CsrfFailed:
        flash(page.request, page.t("error.csrf"), "error")
    except DomainError as exc:
        if missing_is_404 and isinstance(exc, NotFound):
            raise
        page.uow.session.rollback()
        flash(page.request, exc.text(page.lang), "error")
    else:
        message = result if isinstance(result, str) and result else done
        if message:
            flash(page.request, message)
    return RedirectResponse(back, status_code=303)
