"""Pre-failure detection use cases (issue 6): detectors over each ingest batch, findings, gas supply.

The ingest service calls ``on_readings`` inside the transaction that stored a batch. It must stay cheap at
10,000 messages/s, so the work per batch is: one query loading the detector states of the batch's devices,
the pure ``domain.prefailure.step`` per device (about a microsecond a reading), one upsert of the states
that changed, and (only when an hour or a day closes, or a detector speaks) a few more queries for the gas
supplies, calibration records and findings of just those devices. A finding opens, or joins, the device's
``iot`` ticket through ``iot_tickets.open_iot_ticket`` with a telemetry snapshot, once.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.bulk_filters import among
from incucare.adapters.db.tables import Calibration, Device
from incucare.adapters.db.tables_findings import DetectorState, Finding, GasSupplySetting
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import Priority
from incucare.domain.prefailure import (
    ACTIVE_STATUSES,
    DEFAULT_PARAMS,
    TICKET_CATEGORY,
    CalibrationPoint,
    DeviceState,
    FindingKind,
    FindingStatus,
    GasSupply,
    Params,
    Signal,
    calibrated,
    calibration_drift,
    cylinder_changed,
    describe,
    gas_forecast,
    next_working_day_end,
    rebaseline,
    step,
)
from incucare.domain.sla import WorkCalendar
from incucare.domain.telemetry import Reading
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.paging import Page, paginate

PRIORITY = {
    FindingKind.CO2_LEAK: Priority.HIGH,
    FindingKind.GASKET_WEAR: Priority.NORMAL,
    FindingKind.HEATER_AGEING: Priority.NORMAL,
    FindingKind.CO2_SENSOR_DRIFT: Priority.NORMAL,
    FindingKind.GAS_DEPLETION: Priority.HIGH,
}
"""The priority of the ticket a finding opens: a leak or an emptying cylinder threatens cultures within days."""

_ACTIVE = [s.value for s in ACTIVE_STATUSES]


# ---------------------------------------------------------------- ingest hook


@dataclass(slots=True)
class _Entry:
    state: DeviceState
    version: int
    persisted: float
    dirty: bool = False


_CACHE: dict[str, OrderedDict[int, _Entry]] = {}
CACHE_DEVICES = 100_000
"""Detector states kept in memory per database; beyond it the least recently seen are dropped (written first)."""
PERSIST_EVERY_S = 600.0
"""A state whose readings only filled the current hour's sums is written at most this often (a restart loses
at most these minutes of partial sums, never a baseline: completed features and verdicts are written at once)."""


def forget_cache() -> None:
    """Drop every cached detector state (what a process restart does); the database holds the truth."""
    _CACHE.clear()


def _cache(session: Session) -> OrderedDict[int, _Entry]:
    key = str(session.get_bind().engine.url)
    cache = _CACHE.get(key)
    if cache is None:
        cache = _CACHE[key] = OrderedDict()
    return cache


def on_readings(session: Session, batch: Mapping[int, Sequence[Reading]], *, now: datetime,
                params: Params = DEFAULT_PARAMS) -> None:
    """Update each device's (key: device id) baselines with its new readings and record findings.

    Called by the ingest service inside the transaction that stored the batch; must be batched and cheap:
    one light query reads the stored versions (locking the rows on PostgreSQL, so two ingest workers never
    interleave one device), the JSON is loaded only for devices whose cached copy is missing or stale (another
    worker, a restart, a dismissal wrote it), and only states with a completed feature, a verdict or older
    than ``PERSIST_EVERY_S`` are written back.
    """
    ids = sorted(d for d, rs in batch.items() if rs)
    if not ids:
        return
    cache = _cache(session)
    query = select(DetectorState.device_id, DetectorState.version).where(among(session, DetectorState.device_id, ids))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    versions = {row[0]: row[1] for row in session.execute(query)}
    stale = [d for d in ids if d in versions and (d not in cache or cache[d].version != versions[d])]
    if stale:
        for device_id, raw, version in session.execute(
                select(DetectorState.device_id, DetectorState.state, DetectorState.version)
                .where(among(session, DetectorState.device_id, stale))):
            cache[device_id] = _Entry(DeviceState.from_dict(raw), version, now.timestamp())
    for device_id in ids:
        if device_id not in versions:
            cache[device_id] = _Entry(DeviceState(), 0, now.timestamp(), dirty=True)
    states: dict[int, DeviceState] = {}
    write: list[int] = []
    signals: dict[int, dict[FindingKind, Signal]] = defaultdict(dict)
    hourly: list[int] = []
    daily: list[int] = []
    limit = now.timestamp() - PERSIST_EVERY_S
    for device_id in ids:
        entry = cache[device_id]
        cache.move_to_end(device_id)
        st = entry.state
        res = step(st, batch[device_id], params)
        states[device_id] = st
        if res.changed:
            entry.dirty = True
        signals[device_id].update(res.signals)
        if res.hour_closed:
            hourly.append(device_id)
        if res.day_closed or device_id not in versions:
            daily.append(device_id)
        if entry.dirty and (res.material or res.signals or res.hour_closed or entry.persisted <= limit
                            or device_id not in versions):
            write.append(device_id)
    if hourly:
        _check_gas(session, states, hourly, signals, now, params)
    if daily:
        _check_calibrations(session, states, daily, signals, now, params)
    evicted = []
    while len(cache) > CACHE_DEVICES:
        device_id, entry = cache.popitem(last=False)
        if entry.dirty and device_id not in states:
            evicted.append((device_id, entry))
    if write or evicted:
        rows: dict[int, tuple[dict[str, Any], int]] = {}
        for device_id in write:
            entry = cache.get(device_id) or _Entry(states[device_id], versions.get(device_id, 0), 0.0)
            entry.version += 1
            entry.persisted, entry.dirty = now.timestamp(), False
            rows[device_id] = (entry.state.to_dict(), entry.version)
        for device_id, entry in evicted:
            rows[device_id] = (entry.state.to_dict(), entry.version + 1)
        _write_states(session, rows, now)
    if any(signals.values()):
        apply_signals(session, {d: s for d, s in signals.items() if s}, now=now)


def _write_states(session: Session, rows: Mapping[int, tuple[dict[str, Any], int]], now: datetime) -> None:
    """Upsert the states in one executemany (pipelined by psycopg on PostgreSQL), with their new versions."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(DetectorState.metadata.tables[DetectorState.__tablename__])
    session.connection().execute(
        stmt.on_conflict_do_update(index_elements=["device_id"],
                                   set_={"state": stmt.excluded.state, "version": stmt.excluded.version,
                                         "updated_at": stmt.excluded.updated_at}),
        [{"device_id": d, "state": s, "version": v, "updated_at": now} for d, (s, v) in rows.items()])


def _save_state(session: Session, device_id: int, st: DeviceState, now: datetime) -> None:
    """Write one state changed outside ingest (dismissal, cylinder change); the new version makes every ingest
    process reload it instead of trusting its cached copy."""
    row = session.get(DetectorState, device_id)
    if row is None:
        session.add(DetectorState(device_id=device_id, state=st.to_dict(), version=1, updated_at=now))
    else:
        row.state, row.version, row.updated_at = st.to_dict(), row.version + 1, now


_CALENDARS: dict[str, WorkCalendar] = {}


def _working_calendar(session: Session, now: datetime) -> WorkCalendar:
    """The CN business calendar (holidays, 调休) of the SLA settings: when someone can change a cylinder."""
    from incucare.services.sla_policies import quiet_calendar

    cal = quiet_calendar(session, now)
    if cal is None:
        cal = _CALENDARS.get("default")
        if cal is None:
            cal = _CALENDARS["default"] = WorkCalendar.business_hours()
    return cal


def _check_gas(session: Session, states: Mapping[int, DeviceState], ids: Sequence[int],
               signals: dict[int, dict[FindingKind, Signal]], now: datetime, params: Params) -> None:
    supplies = list(session.scalars(select(GasSupplySetting).where(GasSupplySetting.device_id.in_(ids))))
    if not supplies:
        return
    deadline = next_working_day_end(_working_calendar(session, now), now)
    for row in supplies:
        st = states[row.device_id]
        if st.gas_since is None or st.gas_since < row.changed_at.timestamp():
            cylinder_changed(st, row.changed_at)
        supply = GasSupply(row.capacity_l, row.flow_l_min, row.changed_at)
        verdict = gas_forecast(st, supply, now, deadline, params)
        if verdict.active and st.gas_ack is not None and st.gas_ack == st.gas_since:
            continue  # dismissed for this cylinder
        signals[row.device_id][FindingKind.GAS_DEPLETION] = verdict


def _check_calibrations(session: Session, states: Mapping[int, DeviceState], ids: Sequence[int],
                        signals: dict[int, dict[FindingKind, Signal]], now: datetime, params: Params) -> None:
    by_device: dict[int, list[Calibration]] = defaultdict(list)
    for cal in session.scalars(select(Calibration).where(Calibration.device_id.in_(ids),
                                                         Calibration.parameter == "co2")
                               .order_by(Calibration.performed_at, Calibration.id)):
        by_device[cal.device_id].append(cal)
    for device_id, cals in by_device.items():
        st = states[device_id]
        newest = cals[-1]
        if st.cal_id != newest.id:
            calibrated(st, newest.id)
        points = [CalibrationPoint(c.performed_at, c.setpoint, c.as_found, c.as_left) for c in cals]
        verdict = calibration_drift(points, now, params)
        if verdict.active and st.cal_ack == newest.id:
            continue  # dismissed since the last calibration
        if verdict.active or not st.stat(FindingKind.CO2_SENSOR_DRIFT).active:
            signals[device_id][FindingKind.CO2_SENSOR_DRIFT] = verdict  # else the telemetry verdict stands


# ---------------------------------------------------------------- findings from signals


def apply_signals(session: Session, signals: Mapping[int, Mapping[FindingKind, Signal]], *, now: datetime) -> None:
    """Open, refresh or clear findings for detector verdicts (one query for the devices' active findings)."""
    active: dict[tuple[int, str], Finding] = {
        (f.device_id, f.kind): f for f in session.scalars(
            select(Finding).where(Finding.device_id.in_(sorted(signals)), Finding.status.in_(_ACTIVE)))}
    for device_id in sorted(signals):
        for kind, signal in signals[device_id].items():
            finding = active.get((device_id, kind.value))
            if signal.active and finding is None:
                _open_finding(session, device_id, signal, now)
            elif signal.active and finding is not None:
                finding.last_seen_at = now
                finding.evidence = dict(signal.evidence)
                _set_text(finding, kind, signal.evidence, finding.since)
            elif (not signal.active and finding is not None and "reset" not in signal.evidence
                  and finding.evidence.get("source", "") == signal.evidence.get("source", "")):
                # a verdict clears only what the same source raised (records vs telemetry for drift)
                finding.status = FindingStatus.CLEARED.value
                finding.closed_at = now
                finding.last_seen_at = now


def _set_text(finding: Finding, kind: FindingKind, evidence: Mapping[str, Any], since: datetime | None) -> None:
    text = describe(kind, evidence, since)
    finding.summary_zh, finding.summary_en = text.summary_zh, text.summary_en
    finding.recommendation_zh, finding.recommendation_en = text.recommendation_zh, text.recommendation_en


def _open_finding(session: Session, device_id: int, signal: Signal, now: datetime) -> Finding:
    from incucare.services.alarms import build_snapshot
    from incucare.services.iot_tickets import open_iot_ticket

    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found", zh=f"未找到设备 {device_id}")
    finding = Finding(device_id=device_id, customer_id=device.customer_id, kind=signal.kind.value,
                      status=FindingStatus.OPEN.value, since=signal.since or now, opened_at=now, last_seen_at=now,
                      evidence=dict(signal.evidence))
    _set_text(finding, signal.kind, signal.evidence, finding.since)
    session.add(finding)
    session.flush()
    snapshot = build_snapshot(session, device, now, [{"at": now.isoformat(), "label_zh": signal.kind.zh,
                                                      "label_en": signal.kind.en}])
    snapshot["finding"] = {"id": finding.id, "kind": signal.kind.value, "evidence": dict(signal.evidence)}
    ticket = open_iot_ticket(
        session, device_id=device_id, category=TICKET_CATEGORY[signal.kind], priority=PRIORITY[signal.kind],
        summary_zh=f"预故障预警:{signal.kind.zh}。{finding.summary_zh}。建议:{finding.recommendation_zh}",
        summary_en=f"Pre-failure finding: {signal.kind.en}. {finding.summary_en}. "
                   f"Recommended: {finding.recommendation_en}",
        snapshot=snapshot, source_kind="finding", source_id=finding.id, now=now)
    finding.ticket_id = ticket.id
    return finding


# ---------------------------------------------------------------- reading and deciding findings


def _visible(actor: Actor) -> ColumnElement[bool]:
    return Finding.device_id.in_(select(Device.id).where(scoping.devices_visible(actor.scope)))


def list_findings(session: Session, actor: Actor, *, device_id: int | None = None,
                  statuses: Sequence[FindingStatus] = (), kind: FindingKind | None = None,
                  active_only: bool = False, limit: int = 50, offset: int = 0) -> Page[Finding]:
    """Findings the actor may see (customers: their own devices; partners: their region), newest first."""
    query = select(Finding).options(joinedload(Finding.device)).where(_visible(actor))
    if device_id is not None:
        query = query.where(Finding.device_id == device_id)
    wanted = [s.value for s in statuses] or (_ACTIVE if active_only else [])
    if wanted:
        query = query.where(Finding.status.in_(wanted))
    if kind is not None:
        query = query.where(Finding.kind == kind.value)
    return paginate(session, query.order_by(Finding.opened_at.desc(), Finding.id.desc()), limit=limit,
                    offset=offset)


def get_finding(session: Session, actor: Actor, finding_id: int) -> Finding:
    """One finding in the actor's scope (outside it: not found, so its existence does not leak)."""
    finding = session.scalar(select(Finding).options(joinedload(Finding.device))
                             .where(Finding.id == finding_id, _visible(actor)))
    if finding is None:
        raise NotFound(f"finding {finding_id} not found", zh=f"未找到预警 {finding_id}")
    return finding


def decide_finding(session: Session, actor: Actor, finding_id: int, *, confirm: bool, note: str,
                   now: datetime) -> Finding:
    """A person confirms a finding (a real fault: it stays active with its ticket) or dismisses it (a false
    finding: it closes and the detector learns this level as the unit's normal). Staff only; audited."""
    if not actor.is_staff:
        raise PermissionDenied("only service staff may confirm or dismiss findings",
                               zh="只有服务人员可以确认或驳回预警")
    text = note.strip()
    if not text:
        raise ValidationFailed("a note is required", zh="请填写说明")
    finding = get_finding(session, actor, finding_id)
    if finding.status not in _ACTIVE:
        raise Conflict(f"finding {finding_id} is already {finding.status}",
                       zh=f"预警 {finding_id} 已是{FindingStatus(finding.status).zh}状态")
    if confirm and finding.status == FindingStatus.CONFIRMED.value:
        raise Conflict(f"finding {finding_id} is already confirmed", zh=f"预警 {finding_id} 已确认")
    old = finding.status
    finding.status = (FindingStatus.CONFIRMED if confirm else FindingStatus.DISMISSED).value
    finding.decided_by_id, finding.decided_by_name, finding.decided_at = actor.user_id, actor.name, now
    finding.note = text
    if not confirm:
        finding.closed_at = now
        row = session.get(DetectorState, finding.device_id)
        if row is not None:
            st = DeviceState.from_dict(row.state)
            rebaseline(st, FindingKind(finding.kind))
            _save_state(session, finding.device_id, st, now)
    record_change(session, actor, at=now, entity="finding", entity_id=finding.id,
                  action="confirm" if confirm else "dismiss", changes={"status": (old, finding.status)},
                  reason=text)
    session.flush()
    return finding


# ---------------------------------------------------------------- gas supply


def _device(session: Session, actor: Actor, device_id: int) -> Device:
    device = session.scalar(select(Device).where(Device.id == device_id, scoping.devices_visible(actor.scope)))
    if device is None:
        raise NotFound(f"device {device_id} not found", zh=f"未找到设备 {device_id}")
    return device


def _check_gas_numbers(capacity_l: float, flow_l_min: float) -> None:
    if not 0 < capacity_l <= 100_000:
        raise ValidationFailed("capacity_l must be between 0 and 100000 litres",
                               zh="气瓶容量必须在 0 到 100000 升之间")
    if not 0 < flow_l_min <= 100:
        raise ValidationFailed("flow_l_min must be between 0 and 100 L/min", zh="进气流量必须在 0 到 100 升/分钟之间")


def get_gas_supply(session: Session, actor: Actor, device_id: int) -> GasSupplySetting | None:
    """The device's gas-supply settings, or None when none were recorded (no depletion forecast then)."""
    _device(session, actor, device_id)
    return session.get(GasSupplySetting, device_id)


def set_gas_supply(session: Session, actor: Actor, device_id: int, *, capacity_l: float, flow_l_min: float,
                   now: datetime, changed_at: datetime | None = None) -> GasSupplySetting:
    """Record the cylinder size and valve flow (the first time, the cylinder counts as changed now)."""
    if not actor.is_staff and actor.customer_id is None:
        raise PermissionDenied("not allowed to edit gas supplies", zh="无权修改供气设置")
    device = _device(session, actor, device_id)
    _check_gas_numbers(capacity_l, flow_l_min)
    row = session.get(GasSupplySetting, device.id)
    if row is None:
        row = GasSupplySetting(device_id=device.id, capacity_l=capacity_l, flow_l_min=flow_l_min,
                               changed_at=changed_at or now, cylinders=1, updated_at=now, updated_by=actor.name)
        session.add(row)
        record_change(session, actor, at=now, entity="gas_supply", entity_id=device.id, action="create",
                      changes={"capacity_l": (None, capacity_l), "flow_l_min": (None, flow_l_min)})
    else:
        changes = {k: (getattr(row, k), v) for k, v in (("capacity_l", capacity_l), ("flow_l_min", flow_l_min))
                   if getattr(row, k) != v}
        row.capacity_l, row.flow_l_min, row.updated_at, row.updated_by = capacity_l, flow_l_min, now, actor.name
        if changes:
            record_change(session, actor, at=now, entity="gas_supply", entity_id=device.id, action="update",
                          changes=changes)
    session.flush()
    return row


def record_cylinder_change(session: Session, actor: Actor, device_id: int, *, now: datetime,
                           at: datetime | None = None, capacity_l: float | None = None) -> GasSupplySetting:
    """A full cylinder went on: the gas count restarts and an open depletion finding clears."""
    if not actor.is_staff and actor.customer_id is None:
        raise PermissionDenied("not allowed to record cylinder changes", zh="无权登记换瓶")
    device = _device(session, actor, device_id)
    row = session.get(GasSupplySetting, device.id)
    if row is None:
        raise ValidationFailed("record the gas supply (cylinder size and flow) first",
                               zh="请先登记供气设置(气瓶容量和流量)")
    when = at or now
    if when.tzinfo is None:
        raise ValidationFailed("the change time needs a time zone (e.g. 2026-12-05T08:00:00+08:00)",
                               zh="换瓶时间必须带时区(例如 2026-12-05T08:00:00+08:00)")
    if when > now:
        raise ValidationFailed("a cylinder change cannot be in the future", zh="换瓶时间不能晚于当前时间")
    if capacity_l is not None:
        _check_gas_numbers(capacity_l, row.flow_l_min)
        row.capacity_l = capacity_l
    old = row.changed_at
    row.changed_at, row.cylinders, row.updated_at, row.updated_by = when, row.cylinders + 1, now, actor.name
    state = session.get(DetectorState, device.id)
    if state is not None:
        st = DeviceState.from_dict(state.state)
        cylinder_changed(st, when)
        _save_state(session, device.id, st, now)
    for finding in session.scalars(select(Finding).where(Finding.device_id == device.id,
                                                         Finding.kind == FindingKind.GAS_DEPLETION.value,
                                                         Finding.status.in_(_ACTIVE))):
        finding.status, finding.closed_at, finding.last_seen_at = FindingStatus.CLEARED.value, now, now
    record_change(session, actor, at=now, entity="gas_supply", entity_id=device.id, action="cylinder_change",
                  changes={"changed_at": (old, when)})
    session.flush()
    return row
