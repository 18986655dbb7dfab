"""Installed-base import endpoint: upload a CSV/XLSX, get a report; all rows are imported or none."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from incucare.domain.errors import ValidationFailed
from incucare.services import imports
from incucare.services.installed_base import require_manager
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])

_MULTIPART_SLACK = 64 * 1024
"""Bytes of multipart framing tolerated above the file-size limit in Content-Length."""


class ImportErrorOut(BaseModel):
    """One problem: spreadsheet row (1 = header), canonical field, header as written, message."""

    row: int | None = None
    field: str
    message: str
    column: str | None = None


class ImportUpdateOut(BaseModel):
    """A preview of what changes on one existing device: field → [old, new]."""

    row: int
    serial: str
    changes: dict[str, list[str | None]]


class ImportReportOut(BaseModel):
    """What an import did (or, in a dry run, would do)."""

    filename: str
    dry_run: bool
    ok: bool
    rows: int
    customers_created: int
    sites_created: int
    devices_created: int
    devices_updated: int
    devices_unchanged: int
    error_count: int
    errors: list[ImportErrorOut]
    updates: list[ImportUpdateOut]
    summary: str


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "A .csv (UTF-8 or GBK) or .xlsx file; see docs/import.md"}},
        }}},
    }
}


def _too_large(limit_mb: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"the file is larger than the {limit_mb} MB upload limit; "
                                                 "split it into several files")


@router.post("/devices", response_model=ImportReportOut, openapi_extra=_UPLOAD_BODY,
             responses={413: {"description": "Upload too large"},
                        422: {"description": "Row errors: details list every row, field and message"}})
async def import_devices(request: Request, actor: ActorDep, uow: UowDep, now: NowDep,
                         dry_run: bool = False) -> dict[str, Any]:
    """Import devices with their customers and sites from the multipart field ``file``.

    The body is parsed here rather than by a ``File()`` parameter so that permission and the
    declared size are checked before an upload is spooled.
    """
    require_manager(actor)
    limit_mb: int = request.app.state.settings.max_upload_mb
    limit = limit_mb * 1024 * 1024
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _MULTIPART_SLACK:
        raise _too_large(limit_mb)
    form = await request.form(max_files=1, max_fields=5)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed("send the spreadsheet as the multipart/form-data field 'file'",
                                   details=[{"field": "file", "message": "missing"}])
        content = await upload.read(limit + 1)
        filename = upload.filename or "upload"
    finally:
        await form.close()
    if len(content) > limit:
        raise _too_large(limit_mb)

    report = await run_in_threadpool(imports.import_devices, uow.session, actor, now=now,
                                     filename=filename, content=content, dry_run=dry_run)
    if not report.ok:
        raise ValidationFailed(f"{filename}: {report.summary()}", details=[e.as_dict() for e in report.errors])
    if not dry_run:
        await run_in_threadpool(uow.commit)
    return report.as_dict()
