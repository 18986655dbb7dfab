"""Device tokens for HTTP telemetry (gateways that cannot speak MQTT).

A token belongs to one device; only its SHA-256 is stored (tokens are 32 random bytes, so a fast hash is
enough and lookups stay one indexed query per request). Staff issue and revoke them, audited; the secret
is shown once, at issue.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Device
from incucare.adapters.db.tables_telemetry import DeviceToken
from incucare.domain.errors import NotFound
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.installed_base import get_device_by_serial, require_staff

PREFIX = "icd_"


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the secret (shown once) and its record."""

    secret: str
    record: DeviceToken


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(session: Session, actor: Actor, *, now: datetime, serial: str, label: str = "") -> IssuedToken:
    """Create a token for the device ``serial`` (staff only), audited."""
    require_staff(actor)
    device = get_device_by_serial(session, actor, serial)
    secret = PREFIX + secrets.token_urlsafe(32)
    record = DeviceToken(token_hash=_hash(secret), hint=secret[-4:], device_id=device.id, label=label,
                         created_by=actor.user_id, created_at=now)
    session.add(record)
    session.flush()
    record_change(session, actor, at=now, entity="device_token", entity_id=record.id, action="create",
                  changes={"device": (None, device.serial), "label": (None, label)})
    return IssuedToken(secret, record)


def revoke_token(session: Session, actor: Actor, *, now: datetime, token_id: int) -> DeviceToken:
    """Revoke a token (staff only); requests with it get 401 from now on. Revoking twice changes nothing."""
    require_staff(actor)
    record = session.get(DeviceToken, token_id)
    if record is None:
        raise NotFound(f"device token {token_id} not found", zh=f"设备令牌 {token_id} 不存在")
    if record.revoked_at is None:
        record.revoked_at = now
        record_change(session, actor, at=now, entity="device_token", entity_id=record.id, action="revoke",
                      changes={"revoked_at": (None, now.isoformat())})
    return record


def list_tokens(session: Session, actor: Actor, *, serial: str) -> list[DeviceToken]:
    """A device's tokens, newest first (staff only; secrets are never shown again)."""
    require_staff(actor)
    device = get_device_by_serial(session, actor, serial)
    return list(session.scalars(select(DeviceToken).where(DeviceToken.device_id == device.id)
                                .order_by(DeviceToken.id.desc())))


def device_for_token(session: Session, secret: str) -> tuple[int, str] | None:
    """(device id, serial) of a valid, unrevoked token, or None."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    row = session.execute(select(DeviceToken.device_id, Device.serial).join(Device, Device.id == DeviceToken.device_id)
                          .where(DeviceToken.token_hash == _hash(secret), DeviceToken.revoked_at.is_(None))).first()
    return (row[0], row[1]) if row is not None else None
