"""One error shape for the whole API: ``{"error": {"code", "message", "details"}}``, never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from incucare.domain.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)

log = logging.getLogger("incucare.web")

STATUS_FOR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (PermissionDenied, 403),
    (Conflict, 409),
    (ValidationFailed, 422),
]


def status_for(exc: DomainError) -> int:
    """The HTTP status of a domain error."""
    for kind, status in STATUS_FOR:
        if isinstance(exc, kind):
            return status
    return 400


class NotAuthenticated(Exception):
    """No valid credentials on a request that needs them."""


class PageRedirect(Exception):
    """A page needs a logged-in user: send the browser to the login page."""

    def __init__(self, location: str) -> None:
        self.location = location


def error_body(code: str, message: str, details: list[Any] | None = None, *,
               message_en: str | None = None) -> dict[str, Any]:
    """The shared JSON error shape: ``message`` in the caller's language, ``message_en`` always English."""
    return {"error": {"code": code, "message": message, "message_en": message_en or message,
                      "details": details or []}}


def api_language(request: Request) -> str:
    """Chinese unless the caller asks for English (``?lang=en`` or an Accept-Language preferring en)."""
    explicit = request.query_params.get("lang")
    if explicit in ("zh", "en"):
        return explicit
    accept = request.headers.get("accept-language", "").strip().lower()
    return "en" if accept.startswith("en") else "zh"


def _is_page(request: Request) -> bool:
    """Whether a browser reads the answer as a page; JSON routes (the API, and the ``*.json`` data that
    pages fetch for their charts) answer errors in the JSON error shape instead."""
    path = request.url.path
    return not (path.startswith(("/api/", "/static/")) or path.endswith(".json") or path == "/healthz")


def _error_page(request: Request, status: int, error: DomainError | str) -> Response:
    from incucare.web.i18n import pick_language, translator
    from incucare.web.pages.context import LANG_COOKIE, TEMPLATES

    lang = pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))
    message = error.text(lang) if isinstance(error, DomainError) else error
    return TEMPLATES.TemplateResponse(
        request, "error.html",
        {"t": translator(lang), "lang": lang, "status": status, "message": message, "actor": None,
         "flashes": [], "csrf": ""},
        status_code=status,
    )


OUT_OF_RANGE_EN = "number out of range"
OUT_OF_RANGE_ZH = "数值超出范围"
NUMERIC_OUT_OF_RANGE = "22003"
"""PostgreSQL's SQLSTATE for a number too large for its column (SQLite raises Python's OverflowError)."""


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to a precise 4xx (or a logged 500 with a neutral message)."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if _is_page(request):
            return _error_page(request, status_for(exc), exc)
        body = error_body(exc.code, exc.text(api_language(request)), exc.details, message_en=exc.message)
        return JSONResponse(body, status_code=status_for(exc))

    @app.exception_handler(PageRedirect)
    async def _redirect(request: Request, exc: PageRedirect) -> Response:
        if not _is_page(request):  # a chart's data fetched after the session ended: say so, don't send a login page
            message = "authentication required"
            local = message if api_language(request) == "en" else "未登录或会话已过期"
            return JSONResponse(error_body("not_authenticated", local, message_en=message), status_code=401)
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [{"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
                   for e in exc.errors()]
        first = details[0] if details else {"field": "body", "message": "invalid"}
        message = f"invalid input: {first['field']}: {first['message']}"
        zh = f"输入无效: {first['field']}: {first['message']}"
        if _is_page(request):
            return _error_page(request, 422, ValidationFailed(message, zh=zh, details=details))
        local = message if api_language(request) == "en" else zh
        return JSONResponse(error_body("validation_failed", local, details, message_en=message), status_code=422)

    def _out_of_range(request: Request) -> Response:
        """An id or offset beyond what the database can store cannot match anything: the input is wrong."""
        error = ValidationFailed(OUT_OF_RANGE_EN, zh=OUT_OF_RANGE_ZH)
        if _is_page(request):
            return _error_page(request, 422, error)
        body = error_body("validation_failed", error.text(api_language(request)), message_en=OUT_OF_RANGE_EN)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        log.info("number out of range on %s %s: %s", request.method, request.url.path, exc)
        return _out_of_range(request)

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> Response:
        if getattr(exc.orig, "sqlstate", None) == NUMERIC_OUT_OF_RANGE:
            log.info("number out of range on %s %s: %s", request.method, request.url.path, exc.orig)
            return _out_of_range(request)
        return _internal_error(request)

    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(request: Request, exc: NotAuthenticated) -> Response:
        message = str(exc) or "authentication required"
        local = message if api_language(request) == "en" else f"未登录或凭证无效({message})"
        return JSONResponse(error_body("not_authenticated", local, message_en=message),
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_page(request) and exc.status_code in (404, 405):
            return _error_page(request, exc.status_code, str(exc.detail))
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 401: "not_authenticated"}
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(error_body(codes.get(exc.status_code, "http_error"), message),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        message = "the change conflicts with data saved at the same moment; reload and try again"
        local = message if api_language(request) == "en" else "与同时保存的数据冲突,请刷新后重试"
        return JSONResponse(error_body("conflict", local, message_en=message), status_code=409)

    def _internal_error(request: Request) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        message = "unexpected server error; it has been logged"
        local = message if api_language(request) == "en" else "服务器内部错误,已记录日志"
        return JSONResponse(error_body("internal_error", local, message_en=message), status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return _internal_error(request)
