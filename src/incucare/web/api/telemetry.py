"""Telemetry over HTTP: device ingest (device token), charts and twin (tenant-scoped), dead letters and
device tokens (staff). Thin shells over ``services.telemetry_*``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from incucare.adapters.db.tables import Device
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.errors import NotFound, PermissionDenied, ValidationFailed
from incucare.domain.telemetry import TelemetryError, parse_payload
from incucare.services import telemetry_query as query
from incucare.services.installed_base import get_device_by_serial, require_staff
from incucare.services.paging import paginate
from incucare.services.telemetry_ingest import InboundTelemetry, dead_letters_query, store_batch, transport_status
from incucare.services.telemetry_tokens import device_for_token, issue_token, list_tokens, revoke_token
from incucare.web.api.schemas import PageOut, Strict
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import NotAuthenticated, api_language, error_body

router = APIRouter(prefix="/api/v1", tags=["telemetry"])


class IngestOut(BaseModel):
    """What happened to a posted message: readings accepted, newly stored, already known (retries)."""

    serial: str
    readings: int
    stored: int
    duplicates: int


class SeriesOut(BaseModel):
    serial: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    resolution: str = Field(description="raw (spans up to 48 h) or minute (1-minute averages)")
    series: dict[str, list[tuple[datetime, float]]]


class TwinOut(BaseModel):
    serial: str
    last_seen: datetime
    received_at: datetime
    online: bool
    values: dict[str, Any]
    fw: str | None
    transport: str


class DeadLetterOut(BaseModel):
    id: int
    received_at: datetime
    source: str
    topic: str
    serial: str | None
    payload: str
    reason: str


class TokenIn(Strict):
    label: str = Field(default="", max_length=128)


class DeviceTokenOut(BaseModel):
    id: int
    serial: str
    label: str
    hint: str = Field(description="the secret's last 4 characters")
    created_at: datetime
    revoked_at: datetime | None
    token: str | None = Field(default=None, description="the secret: returned once, when issued")


class TransportOut(BaseModel):
    kind: str = Field(description="mqtt, inproc (demo fleet in this process) or none")
    connected: bool
    detail: str
    since: datetime | None


def _device_secret(authorization: str | None, x_device_token: str | None) -> str:
    if x_device_token:
        return x_device_token.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    raise NotAuthenticated("device token required: send 'Authorization: Bearer <device token>' or 'X-Device-Token'")


@router.post("/telemetry", response_model=IngestOut, status_code=202)
async def post_telemetry(
    request: Request, uow: UowDep, now: NowDep,
    authorization: Annotated[str | None, Header()] = None,
    x_device_token: Annotated[str | None, Header()] = None,
) -> Any:
    """Telemetry from an HTTP-only gateway: one reading object or a list, for the token's device.

    Same validation as MQTT; a rejected body gets a 4xx naming the problem and stores nothing. Retries of
    the same readings are accepted and counted as duplicates (idempotent).
    """
    limit = request.app.state.settings.telemetry_http_max_kb * 1024
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(request, limit)
    secret = _device_secret(authorization, x_device_token)
    body = await request.body()
    if len(body) > limit:
        return _too_large(request, limit)
    # the database work runs in the thread pool: the event loop keeps serving other requests
    return await run_in_threadpool(_ingest_http, uow, secret, body, now)


def _ingest_http(uow: UnitOfWork, secret: str, body: bytes, now: datetime) -> IngestOut:
    found = device_for_token(uow.session, secret)
    if found is None:
        raise NotAuthenticated("invalid or revoked device token")
    _, serial = found
    try:
        data: object = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = body  # the parser names the exact problem
    items = data if isinstance(data, list) else [data]
    for item in items:
        own = item.get("serial") if isinstance(item, dict) else None
        if isinstance(own, str) and own.strip() != serial:
            raise PermissionDenied(f"this token belongs to device {serial}; it cannot send telemetry for {own.strip()}",
                                   zh=f"此令牌属于设备 {serial}，不能为 {own.strip()} 上报数据")
    readings = parse_payload(serial, data, now=now)  # TelemetryError → 422 with the reason, nothing stored
    report = store_batch(uow.session, [InboundTelemetry(serial=serial, payload=data, source="http",
                                                        received_at=now)], now=now)
    if report.dead_letters:  # cannot happen after parse_payload; never store a half-accepted body
        raise TelemetryError(report.rejected[0][1])
    uow.commit()
    return IngestOut(serial=serial, readings=len(readings), stored=report.stored, duplicates=report.duplicates)


def _too_large(request: Request, limit: int) -> JSONResponse:
    en = f"telemetry body larger than {limit // 1024} KB; send fewer readings per request"
    zh = f"遥测请求体超过 {limit // 1024} KB；请分批上报"
    return JSONResponse(error_body("payload_too_large", en if api_language(request) == "en" else zh, message_en=en),
                        status_code=413)


@router.get("/devices/{serial}/telemetry", response_model=SeriesOut, response_model_by_alias=True)
def device_telemetry(
    serial: str, uow: UowDep, actor: ActorDep, now: NowDep,
    start: Annotated[datetime | None, Query(alias="from", description="default: 24 h before 'to'")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
    fields: Annotated[str | None, Query(description="comma-separated, e.g. temp_c,co2_pct")] = None,
    resolution: Annotated[str, Query(pattern="^(auto|raw|minute)$")] = "auto",
) -> SeriesOut:
    """A device's time series (raw up to 48 h, else 1-minute averages), within the caller's scope."""
    device = get_device_by_serial(uow.session, actor, serial)
    end = _aware(end, "to") if end is not None else now
    start = _aware(start, "from") if start is not None else end - timedelta(hours=24)
    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    chosen = query.resolution(start, end) if resolution == "auto" else resolution
    if chosen == "raw" and end - start > query.RAW_SPAN_MAX:
        raise ValidationFailed("raw readings are served for spans up to 7 days; use resolution=minute",
                               zh="原始数据最多查询 7 天；请使用 resolution=minute")
    data = query.series(uow.session, device.id, start, end, names, source=chosen)
    return SeriesOut(serial=device.serial, start=start, end=end, resolution=chosen, series=data)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValidationFailed(f"'{name}' needs a time zone (e.g. 2026-11-27T10:00:00+08:00)",
                               zh=f"'{name}' 需要带时区（例如 2026-11-27T10:00:00+08:00）")
    return value


@router.get("/devices/{serial}/twin", response_model=TwinOut)
def device_twin(serial: str, uow: UowDep, actor: ActorDep, now: NowDep) -> TwinOut:
    """The device's last known state; 404 until it has sent telemetry."""
    device = get_device_by_serial(uow.session, actor, serial)
    view = query.twin(uow.session, device.id, now=now)
    if view is None:
        raise NotFound(f"device {device.serial} has not sent telemetry yet",
                       zh=f"设备 {device.serial} 尚未上报遥测数据")
    return TwinOut(serial=device.serial, last_seen=view.last_seen, received_at=view.received_at, online=view.online,
                   values=view.values, fw=view.fw, transport=view.transport)


@router.get("/telemetry/dead-letters", response_model=PageOut[DeadLetterOut])
def dead_letters(uow: UowDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0)] = 0) -> PageOut[DeadLetterOut]:
    """Rejected telemetry messages, newest first, with the reason (staff only)."""
    require_staff(actor)
    page = paginate(uow.session, dead_letters_query(), limit=limit, offset=offset)
    return PageOut(items=[DeadLetterOut(id=d.id, received_at=d.received_at, source=d.source, topic=d.topic,
                                        serial=d.serial, payload=d.payload, reason=d.reason) for d in page.items],
                   total=page.total, limit=page.limit, offset=page.offset)


@router.get("/telemetry/status", response_model=TransportOut)
def telemetry_status(actor: ActorDep) -> TransportOut:
    """How telemetry reaches this process (MQTT connected or not, or the in-process demo fleet)."""
    require_staff(actor)
    status = transport_status()
    return TransportOut(kind=status.kind, connected=status.connected, detail=status.detail, since=status.since)


@router.post("/devices/{serial}/telemetry-tokens", response_model=DeviceTokenOut, status_code=201)
def create_token(serial: str, body: TokenIn, uow: UowDep, actor: ActorDep, now: NowDep) -> DeviceTokenOut:
    """Issue a device token for HTTP telemetry (staff); the secret is in this answer only."""
    issued = issue_token(uow.session, actor, now=now, serial=serial, label=body.label)
    uow.commit()
    r = issued.record
    return DeviceTokenOut(id=r.id, serial=serial.strip(), label=r.label, hint=r.hint, created_at=r.created_at,
                          revoked_at=r.revoked_at, token=issued.secret)


@router.get("/devices/{serial}/telemetry-tokens", response_model=list[DeviceTokenOut])
def device_tokens(serial: str, uow: UowDep, actor: ActorDep) -> list[DeviceTokenOut]:
    """A device's tokens (staff); secrets are never shown again."""
    return [DeviceTokenOut(id=r.id, serial=serial.strip(), label=r.label, hint=r.hint, created_at=r.created_at,
                           revoked_at=r.revoked_at) for r in list_tokens(uow.session, actor, serial=serial)]


@router.post("/telemetry-tokens/{token_id}/revoke", response_model=DeviceTokenOut)
def revoke(token_id: int, uow: UowDep, actor: ActorDep, now: NowDep) -> DeviceTokenOut:
    """Revoke a device token (staff); the device's next request gets 401."""
    r = revoke_token(uow.session, actor, now=now, token_id=token_id)
    uow.commit()
    device = uow.session.get(Device, r.device_id)
    serial = device.serial if device is not None else ""
    return DeviceTokenOut(id=r.id, serial=serial, label=r.label, hint=r.hint, created_at=r.created_at,
                          revoked_at=r.revoked_at)
