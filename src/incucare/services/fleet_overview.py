"""The monitoring views: the fleet at a glance, a device's last day as chart series, a ticket's snapshot.

Why a service: the monitoring page, the device page's chart and the ticket page's snapshot must show only
what the viewer may see (a customer its own incubators, a regional partner its region), and the counts of
active alarms and open findings come from the alarm and pre-failure tables; none of that belongs in web.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incucare.adapters.db import scoping
from incucare.adapters.db.tables import Customer, Device, DeviceModel
from incucare.adapters.db.tables_alarms import Alarm
from incucare.adapters.db.tables_findings import Finding
from incucare.adapters.db.tables_telemetry import DeviceTwin
from incucare.services import alarms, demo_fleet, telemetry_ingest, telemetry_query
from incucare.services.context import Actor
from incucare.services.installed_base import get_device
from incucare.services.tickets import get_ticket

CHART_FIELDS = ("temp_c", "co2_pct", "o2_pct")
ACTIVE_ALARM_STATES = ("active_unack", "active_ack")
OPEN_FINDING_STATES = ("open", "confirmed")


@dataclass(frozen=True)
class FleetRow:
    """One device that sends telemetry, as the fleet overview lists it."""

    device_id: int
    serial: str
    customer: str
    model: str
    tri_gas: bool
    online: bool
    last_seen: datetime
    values: dict[str, Any]
    transport: str
    active_alarms: int
    open_findings: int


@dataclass(frozen=True)
class FleetOverview:
    """The fleet in the viewer's scope, the counts over it and how telemetry reaches this process."""

    rows: list[FleetRow]
    online: int
    offline: int
    active_alarms: int
    open_findings: int
    transport: telemetry_ingest.TransportStatus
    demo: demo_fleet.FleetStatus
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _counts(session: Session, model: Any, column: Any, states: Sequence[str], ids: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        rows = session.execute(select(model.device_id, func.count()).where(
            model.device_id.in_(chunk), column.in_(states)).group_by(model.device_id))
        out.update((int(device_id), int(n)) for device_id, n in rows)
    return out


def overview(session: Session, actor: Actor, *, now: datetime, limit: int = 500) -> FleetOverview:
    """Devices in the actor's scope that have sent telemetry: online first judged at ``now``, worst first."""
    rows = session.execute(
        select(Device.id, Device.serial, Customer.name, DeviceModel.brand, DeviceModel.model, DeviceModel.tri_gas,
               DeviceTwin)
        .join(DeviceTwin, DeviceTwin.device_id == Device.id)
        .join(Customer, Customer.id == Device.customer_id).join(DeviceModel, DeviceModel.id == Device.model_id)
        .where(scoping.devices_visible(actor.scope)).order_by(Device.serial).limit(limit + 1)).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    ids = [r[0] for r in rows]
    alarm_n = _counts(session, Alarm, Alarm.state, ACTIVE_ALARM_STATES, ids)
    finding_n = _counts(session, Finding, Finding.status, OPEN_FINDING_STATES, ids)
    out = []
    for device_id, serial, customer, brand, model, tri_gas, twin in rows:
        out.append(FleetRow(
            device_id=device_id, serial=serial, customer=customer, model=f"{brand} {model}", tri_gas=bool(tri_gas),
            online=twin.last_seen >= now - telemetry_ingest.OFFLINE_AFTER, last_seen=twin.last_seen,
            values=dict(twin.last_values or {}), transport=twin.transport,
            active_alarms=alarm_n.get(device_id, 0), open_findings=finding_n.get(device_id, 0)))
    out.sort(key=lambda r: (-r.active_alarms, -r.open_findings, r.online, r.serial))
    online = sum(r.online for r in out)
    return FleetOverview(rows=out, online=online, offline=len(out) - online,
                         active_alarms=sum(r.active_alarms for r in out),
                         open_findings=sum(r.open_findings for r in out),
                         transport=telemetry_ingest.transport_status(), demo=demo_fleet.status(),
                         truncated=truncated)


def _local(ts: datetime, zone: ZoneInfo) -> str:
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def door_spans(points: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, datetime]]:
    """Door-open samples (value > 0) merged into spans: consecutive open samples make one opening."""
    spans: list[tuple[datetime, datetime]] = []
    was_open = False
    for ts, value in points:
        if value > 0:
            spans[-1:] = [(spans[-1][0], ts)] if was_open else [*spans[-1:], (ts, ts)]
        was_open = value > 0
    return spans


def device_chart(session: Session, actor: Actor, device_id: int, *, now: datetime, zone: ZoneInfo,
                 hours: int = 24) -> dict[str, Any]:
    """The device's last ``hours`` as chart data: temperature, CO2, O2 (when reported) and door openings,
    with local-time x values so the chart reads in the service organisation's zone."""
    device = get_device(session, actor, device_id)  # scope check: NotFound for someone else's device
    start = now - timedelta(hours=hours)
    data = telemetry_query.series(session, device.id, start, now + timedelta(seconds=1),
                                  [*CHART_FIELDS, "door_open"])
    fields = {name: [[_local(ts, zone), round(v, 3)] for ts, v in data.get(name, [])]
              for name in CHART_FIELDS if data.get(name)}
    doors = [[_local(a, zone), _local(b, zone)] for a, b in door_spans(data.get("door_open", []))]
    return {"device_id": device.id, "serial": device.serial, "from": _local(start, zone), "to": _local(now, zone),
            "fields": fields, "doors": doors, "marks": []}


def device_injection(session: Session, actor: Actor, device_id: int, *, now: datetime, zone: ZoneInfo,
                     days: int = 7) -> dict[str, Any]:
    """CO2 injection seconds per hour over the last ``days``, local hours: the quantity a slow leak raises
    (and a drifting sensor lowers) long before CO2 itself moves, so a person can see what a finding saw."""
    device = get_device(session, actor, device_id)  # scope check
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    data = telemetry_query.series(session, device.id, end - timedelta(days=days), end, ["co2_valve_open_s"])
    hours: dict[datetime, float] = defaultdict(float)
    for ts, value in data.get("co2_valve_open_s", []):
        hours[ts.replace(minute=0, second=0, microsecond=0)] += value
    points = [[_local(h, zone), round(v, 1)] for h, v in sorted(hours.items())]
    return {"device_id": device.id, "serial": device.serial, "fields": {"co2_valve_open_s": points} if points else {},
            "doors": [], "marks": []}


def ticket_snapshot(session: Session, actor: Actor, ticket_id: int, *, zone: ZoneInfo) -> dict[str, Any] | None:
    """The telemetry snapshot stored with an iot ticket (hours around the alarm or finding), or None;
    x values in local time, marks (alarm raised/cleared...) kept with their zh/en labels."""
    ticket = get_ticket(session, actor, ticket_id)  # scope check
    snap = alarms.snapshot_for_ticket(session, ticket.id)
    if not snap:
        return None

    def local(text: Any) -> str:
        try:
            return _local(datetime.fromisoformat(str(text).replace("Z", "+00:00")), zone)
        except ValueError:
            return str(text)

    fields: dict[str, list[list[Any]]] = defaultdict(list)
    for name, points in (snap.get("fields") or {}).items():
        if name in CHART_FIELDS and points:
            fields[name] = [[local(p[0]), p[1]] for p in points if p and p[1] is not None]
    doors_raw = (snap.get("fields") or {}).get("door_open") or []
    doors = [[_local(a, zone), _local(b, zone)] for a, b in door_spans(
        [(datetime.fromisoformat(str(p[0]).replace("Z", "+00:00")), float(p[1])) for p in doors_raw
         if p and p[1] is not None])]
    marks = [{"at": local(m.get("at")), "label_zh": m.get("label_zh", ""), "label_en": m.get("label_en", "")}
             for m in snap.get("marks") or []]
    return {"device_id": snap.get("device_id"), "serial": snap.get("serial"),
            "event_at": local(snap.get("event_at")), "fields": dict(fields), "doors": doors, "marks": marks}
