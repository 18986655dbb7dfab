"""Tier-1 self-service over the API: articles for a ticket, "did this fix it?", photos and files, deflection.

The rules live in ``services.self_service`` and ``services.attachments``; this module only translates.
Customers see only the articles they can follow themselves (tier-1 articles); staff see all of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from incucare.adapters.db.tables import TicketAttachment
from incucare.domain.errors import ValidationFailed
from incucare.domain.model import Channel
from incucare.services import attachments as files_svc
from incucare.services import self_service as svc
from incucare.services import sla as sla_svc
from incucare.services.tickets import get_ticket
from incucare.web import kb_view
from incucare.web.api.schemas import TicketOut
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import api_language, error_body

router = APIRouter(prefix="/api/v1", tags=["self-service"])
MAX_FILES_PER_REQUEST = files_svc.MAX_PER_TICKET


class ArticleOut(BaseModel):
    """A suggested troubleshooting article, in the caller's language, with a link to read it."""

    id: str
    title: str
    snippet: str
    category: str
    tier: int
    score: float
    page_url: str = Field(description="The readable article page in the web app")
    api_url: str


class SuggestionsOut(BaseModel):
    """The articles offered for a ticket or a report being typed."""

    items: list[ArticleOut]
    total: int


class SelfServiceIn(BaseModel):
    """The answer to "did this fix it?" for the articles the customer tried."""

    fixed: bool
    article_ids: list[str] = Field(default_factory=list, max_length=20)
    note: str = Field(default="", max_length=2000)


class DeflectIn(BaseModel):
    """What the customer is typing into the report form, before they submit it."""

    text: str = Field(min_length=1, max_length=4000)
    limit: int = Field(default=3, ge=1, le=10)


class AttachmentOut(BaseModel):
    """An attachment's metadata (the bytes are at ``url``)."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    channel: str
    uploaded_at: datetime
    url: str

    @classmethod
    def of(cls, a: TicketAttachment) -> AttachmentOut:
        """The metadata of a stored attachment."""
        return cls(id=a.id, filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256,
                   channel=a.channel, uploaded_at=a.uploaded_at,
                   url=f"/api/v1/tickets/{a.ticket_id}/attachments/{a.id}")


def _items(found: list[svc.Suggestion], lang: str) -> SuggestionsOut:
    items = []
    for s in found:
        v = kb_view.view(s.article, lang, s.score)
        items.append(ArticleOut(id=v.id, title=v.title, snippet=v.snippet, category=v.category, tier=v.tier,
                                score=v.score, page_url=f"/kb/{v.id}", api_url=f"/api/v1/kb/articles/{v.id}"))
    return SuggestionsOut(items=items, total=len(items))


@router.get("/tickets/{ticket_id}/suggestions", response_model=SuggestionsOut)
def suggestions(ticket_id: int, request: Request, actor: ActorDep, uow: UowDep,
                limit: Annotated[int, Query(ge=1, le=10)] = 3) -> SuggestionsOut:
    """The best articles for this ticket; customers get tier-1 articles only, and never one they said failed."""
    ticket = get_ticket(uow.session, actor, ticket_id)
    return _items(svc.suggestions_for(uow.session, actor, ticket, limit=limit), api_language(request))


@router.post("/kb/deflect", response_model=SuggestionsOut)
def deflect(body: DeflectIn, request: Request, actor: ActorDep) -> SuggestionsOut:
    """Articles for a report before it is submitted (deflection); customers get tier-1 articles only.

    A POST because the text can be a long description; nothing is stored.
    """
    found = svc.suggest(body.text, customer_facing=not actor.is_staff, limit=body.limit)
    return _items(found, api_language(request))


@router.post("/tickets/{ticket_id}/self-service", response_model=TicketOut)
def self_service_answer(ticket_id: int, body: SelfServiceIn, request: Request, actor: ActorDep, uow: UowDep,
                        now: NowDep) -> TicketOut:
    """Record "did this fix it?": yes resolves the ticket at tier 1 (first-contact resolution), no is logged
    and the ticket goes on; yes on a ticket already beyond tier 1 is a 409."""
    ticket = svc.answer(uow.session, actor, ticket_id, now=now, fixed=body.fixed, article_ids=body.article_ids,
                        note=body.note)
    uow.commit()
    return TicketOut.of(ticket, actor.role, sla_svc.compute(uow.session, ticket, now), api_language(request))


def read_upload(upload: UploadFile) -> files_svc.NewAttachment:
    """The bytes of one uploaded file, reading at most one byte past the limit (a huge file is never held)."""
    data = upload.file.read(files_svc.MAX_BYTES + 1)
    return files_svc.NewAttachment(filename=upload.filename or "", content_type=upload.content_type or "",
                                   data=data)


def too_large(new: list[files_svc.NewAttachment]) -> list[str]:
    """Names of the files over the size limit."""
    return [f.filename or "file" for f in new if len(f.data) > files_svc.MAX_BYTES]


def _too_large_response(request: Request, names: list[str]) -> JSONResponse:
    mb = files_svc.MAX_BYTES // (1024 * 1024)
    en = f"{', '.join(names)}: larger than {mb} MB; nothing was stored"
    zh = f"{', '.join(names)}:文件超过 {mb} MB,未保存任何文件"
    local = en if api_language(request) == "en" else zh
    return JSONResponse(error_body("too_large", local, [{"field": "files", "message": n} for n in names],
                                   message_en=en), status_code=413)


@router.post("/tickets/{ticket_id}/attachments", response_model=list[AttachmentOut], status_code=201,
             responses={413: {"description": "A file is larger than 10 MB (nothing stored)"},
                        422: {"description": "Not a photo or PDF, empty, or too many files (nothing stored)"}})
def upload(ticket_id: int, request: Request, actor: ActorDep, uow: UowDep, now: NowDep,
           files: Annotated[list[UploadFile], File(description="One or more photos (JPEG, PNG, GIF, WebP, HEIC) "
                                                               "or PDF files, 10 MB each")]) -> Any:
    """Attach photos or PDFs to a ticket; one bad file refuses the whole request.

    Types are recognised from the bytes, not from the name or the claimed type; the same file twice is
    stored once (the answer lists only what was newly stored).
    """
    ticket = get_ticket(uow.session, actor, ticket_id, for_update=True)
    if len(files) > MAX_FILES_PER_REQUEST:
        raise ValidationFailed(f"at most {MAX_FILES_PER_REQUEST} files per request",
                               zh=f"每次最多上传 {MAX_FILES_PER_REQUEST} 个文件")
    new = [read_upload(f) for f in files]
    oversize = too_large(new)
    if oversize:
        return _too_large_response(request, oversize)
    stored = files_svc.add_attachments(uow.session, actor, ticket, new, channel=Channel.API, now=now)
    uow.commit()
    return [AttachmentOut.of(a) for a in stored]


@router.get("/tickets/{ticket_id}/attachments", response_model=list[AttachmentOut])
def list_files(ticket_id: int, actor: ActorDep, uow: UowDep) -> list[AttachmentOut]:
    """The ticket's attachments, oldest first (metadata only)."""
    ticket = get_ticket(uow.session, actor, ticket_id)
    return [AttachmentOut.of(a) for a in files_svc.list_attachments(uow.session, ticket)]


def attachment_response(attachment: TicketAttachment) -> Response:
    """The stored bytes with the sniffed type, shown inline under a header-safe name, never content-sniffed."""
    name = attachment.filename or "attachment"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)[:100] or "file"
    disposition = f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(content=attachment.data, media_type=attachment.content_type, headers={
        "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=3600"})


@router.get("/tickets/{ticket_id}/attachments/{attachment_id}", response_class=Response,
            responses={200: {"content": {"image/*": {}, "application/pdf": {}}}})
def download(ticket_id: int, attachment_id: int, actor: ActorDep, uow: UowDep) -> Response:
    """One attachment's bytes (a ticket the caller cannot see, or another ticket's attachment, is a 404)."""
    ticket = get_ticket(uow.session, actor, ticket_id)
    return attachment_response(files_svc.get_attachment(uow.session, ticket, attachment_id))
