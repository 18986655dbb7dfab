"""Alarms over incoming telemetry (issue 6): evaluate, keep one active alarm per device and type, open tickets.

Why it is built this way: the ingest goal is 10,000 messages a second, so ``on_readings`` makes one query
for the devices of a batch (model, customer kind, stored rule state), one for the profiles, evaluates in
memory and writes back only the states that changed; anything slower (alarm rows, tickets, snapshots)
happens only when a rule fires or clears, which is rare. Offline detection and the call-tree escalation of
unacknowledged critical alarms run in the background round, driven by ``now``.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.bulk_filters import among
from incucare.adapters.db.tables import Contact, Customer, Device, DeviceModel, User
from incucare.adapters.db.tables_alarms import Alarm, AlarmProfile, AlarmRuleState, TicketSnapshot
from incucare.adapters.db.tables_telemetry import DeviceTwin
from incucare.domain.alarms import (
    CALL_TREE,
    AlarmState,
    AlarmType,
    CallTreeStep,
    Severity,
    Signal,
    acknowledge,
    clear,
    escalates,
    escalation_due,
    evaluate,
    go_offline,
    opens_ticket,
    profile_from_dict,
    ticket_priority,
    type_label,
)
from incucare.domain.alarms import AlarmProfile as Profile
from incucare.domain.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import EventKind, Role, Tier
from incucare.domain.telemetry import Reading
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.duty import duty_person, first_active
from incucare.services.iot_tickets import RMS, first_snapshot, note_on_ticket, open_iot_ticket
from incucare.services.notifications import enqueue, notify_user
from incucare.services.paging import Page, paginate
from incucare.services.taxonomy import current_taxonomy

log = logging.getLogger("incucare.alarms")

SNAPSHOT_BEFORE = timedelta(hours=3)
"""How much history a ticket's chart shows before the event."""
SNAPSHOT_MAX_SPAN = timedelta(hours=12)
SNAPSHOT_FIELDS = ("co2_pct", "temp_c")
SNAPSHOT_POINTS = 360
"""At most this many points per field (evenly thinned), so a 10-second device does not bloat the row."""
NOTE_MAX = 1000


# ------------------------------------------------------------------------------------------ profiles


PROFILE_TTL_S = 10.0
"""Profiles are cached per database for this long: one round trip less per ingest batch. An edit made in this
process applies at once; one made by another process within this many seconds."""
_profile_cache: weakref.WeakKeyDictionary[Any, tuple[float, dict[int | None, Profile]]] = weakref.WeakKeyDictionary()


def _engine_of(session: Session) -> Any:
    bind = session.get_bind()
    return getattr(bind, "engine", bind)


def _profiles(session: Session, *, fresh: bool = False) -> dict[int | None, Profile]:
    """Every stored profile by model id (None: the fleet default); a handful of rows, cached briefly."""
    engine = _engine_of(session)
    hit = _profile_cache.get(engine)
    if hit is not None and not fresh and time.monotonic() - hit[0] < PROFILE_TTL_S:
        return hit[1]
    out: dict[int | None, Profile] = {}
    for row in session.scalars(select(AlarmProfile)):
        try:
            out[row.model_id] = profile_from_dict(row.config)
        except ValidationFailed:
            log.error("alarm profile %s is invalid; using the defaults", row.id)
    _profile_cache[engine] = (time.monotonic(), out)
    return out


def _profile_of(profiles: Mapping[int | None, Profile], model_id: int | None) -> Profile:
    return profiles.get(model_id) or profiles.get(None) or Profile()


def get_profile(session: Session, actor: Actor, model_id: int | None) -> tuple[Profile, AlarmProfile | None]:
    """The profile that applies to a model (its own, else the fleet default, else built-in) and its row if any.

    Everyone signed in may read it: a lab should know when its incubator will call for help.
    """
    if model_id is not None and session.get(DeviceModel, model_id) is None:
        raise NotFound(f"device model {model_id} not found", zh=f"未找到设备型号 {model_id}")
    row = session.scalar(select(AlarmProfile).where(_model_is(model_id)))
    profiles = _profiles(session, fresh=True)
    return _profile_of(profiles, model_id), row


def _model_is(model_id: int | None) -> ColumnElement[bool]:
    return AlarmProfile.model_id.is_(None) if model_id is None else AlarmProfile.model_id == model_id


def put_profile(session: Session, actor: Actor, model_id: int | None, config: Mapping[str, Any], *,
                now: datetime) -> Profile:
    """Replace a model's profile (or the fleet default); service managers only, checked and audited.

    Fault codes must map to categories of the current triage taxonomy, so every alarm ticket is triaged.
    Rule states are kept: a running deviation timer continues under the new numbers.
    """
    if not actor.is_manager:
        raise PermissionDenied("only a service manager edits alarm profiles", zh="只有售后经理可以编辑报警配置")
    if model_id is not None and session.get(DeviceModel, model_id) is None:
        raise NotFound(f"device model {model_id} not found", zh=f"未找到设备型号 {model_id}")
    categories = frozenset(c.key for c in current_taxonomy(session).categories)
    profile = profile_from_dict(config, categories)
    new = profile.to_dict()
    row = session.scalar(select(AlarmProfile).where(_model_is(model_id)))
    old = row.config if row is not None else {}
    if row is None:
        row = AlarmProfile(model_id=model_id, config=new, updated_at=now, updated_by=actor.name)
        session.add(row)
    else:
        row.config, row.updated_at, row.updated_by = new, now, actor.name
    session.flush()
    _profile_cache.pop(_engine_of(session), None)
    changes = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
    record_change(session, actor, at=now, entity="alarm_profile", entity_id=model_id or "default",
                  action="update" if old else "create", changes=changes)
    return profile


# ------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class _DeviceInfo:
    model_id: int
    customer_kind: str
    state: dict[str, Any] | None


def _device_info(session: Session, ids: Sequence[int]) -> dict[int, _DeviceInfo]:
    rows = session.execute(
        select(Device.id, Device.model_id, Customer.kind, AlarmRuleState.state)
        .join(Customer, Customer.id == Device.customer_id)
        .outerjoin(AlarmRuleState, AlarmRuleState.device_id == Device.id)
        .where(among(session, Device.id, ids)))
    return {r[0]: _DeviceInfo(r[1], r[2], dict(r[3]) if r[3] is not None else None) for r in rows}


def _write_states(session: Session, changed: Mapping[int, dict[str, Any]], had_row: set[int], now: datetime) -> None:
    """Upsert the changed non-empty states in one statement, delete the emptied ones in another."""
    gone = [d for d, s in changed.items() if not s and d in had_row]
    keep = [{"device_id": d, "state": s, "updated_at": now} for d, s in changed.items() if s]
    if gone:
        session.execute(delete(AlarmRuleState).where(AlarmRuleState.device_id.in_(gone))
                        .execution_options(synchronize_session=False))
    if keep:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        for start in range(0, len(keep), 500):  # one multi-row statement per 500 (3 parameters a row)
            stmt = insert(AlarmRuleState).values(keep[start:start + 500])
            session.execute(stmt.on_conflict_do_update(index_elements=["device_id"],
                                                       set_={"state": stmt.excluded.state,
                                                             "updated_at": stmt.excluded.updated_at}))


def on_readings(session: Session, batch: Mapping[int, Sequence[Reading]], *, now: datetime) -> None:
    """Evaluate the alarm rules of each device (key: device id) on its new readings, oldest first.

    Called by the ingest service inside the transaction that stored the batch; must be batched and cheap.
    """
    if not batch:
        return
    info = _device_info(session, sorted(batch))
    profiles = _profiles(session)
    changed: dict[int, dict[str, Any]] = {}
    fired: list[tuple[int, Profile, Signal]] = []
    for device_id, readings in batch.items():
        device = info.get(device_id)
        if device is None or not readings:
            continue
        profile = _profile_of(profiles, device.model_id)
        before = device.state or {}
        state, signals = evaluate(profile, before, readings, now, customer_kind=device.customer_kind)
        if state != before:
            changed[device_id] = state
        fired.extend((device_id, profile, s) for s in signals)
    if changed:
        _write_states(session, changed, {d for d, i in info.items() if i.state is not None}, now)
    for device_id, profile, signal in sorted(fired, key=lambda f: (f[2].at, f[0])):
        apply_signal(session, device_id, profile, signal, now=now)


def _active(session: Session, device_id: int, alarm_type: str) -> Alarm | None:
    return session.scalar(select(Alarm).where(Alarm.device_id == device_id, Alarm.alarm_type == alarm_type,
                                              Alarm.cleared_at.is_(None)))


def apply_signal(session: Session, device_id: int, profile: Profile, signal: Signal, *, now: datetime) -> Alarm | None:
    """Turn one signal into the alarm row's lifecycle: raise (or repeat), or clear; tickets for major+."""
    alarm = _active(session, device_id, signal.alarm_type)
    if not signal.raised:
        if alarm is not None:
            _clear(session, alarm, signal, now)
        return alarm
    if alarm is not None:  # a repeat of an active alarm: one row, counted
        alarm.count += 1
        alarm.last_at, alarm.last_value = signal.at, signal.value
        if Severity(alarm.severity).rank < signal.severity.rank:
            alarm.severity = signal.severity.value
        return alarm
    device = session.get(Device, device_id)
    assert device is not None
    alarm = _new_alarm(device_id, device.customer_id, profile, signal)
    try:
        with session.begin_nested():
            session.add(alarm)
    except IntegrityError:  # another worker raised the same alarm a moment ago: count it there
        existing = _active(session, device_id, signal.alarm_type)
        if existing is None:
            raise
        existing.count += 1
        return existing
    record_change(session, RMS, at=now, entity="alarm", entity_id=alarm.id, action="raise",
                  changes={"device": (None, device.serial), "type": (None, signal.alarm_type),
                           "severity": (None, signal.severity.value)}, reason=signal.en)
    if opens_ticket(signal.severity):
        try:
            with session.begin_nested():
                _open_ticket_for(session, alarm, device, signal, now)
        except DomainError:  # e.g. a device no contract or taxonomy rule can take: the alarm still stands
            log.exception("alarm %s on %s: no ticket could be opened", alarm.id, device.serial)
    return alarm


def _open_ticket_for(session: Session, alarm: Alarm, device: Device, signal: Signal, now: datetime) -> None:
    ticket = open_iot_ticket(
        session, device_id=device.id, category=signal.category, priority=ticket_priority(signal.severity),
        summary_zh=f"【远程监控报警 · {signal.severity.zh}】{device.customer.name} {device.serial}:{signal.zh}",
        summary_en=f"[RMS alarm · {signal.severity.en}] {device.customer.name} {device.serial}: {signal.en}",
        snapshot=build_snapshot(session, device, signal.at, [_mark(signal)]), source_kind="alarm",
        source_id=alarm.id, now=now)
    alarm.ticket_id = ticket.id
    note_on_ticket(session, ticket.id, now=now, kind=EventKind.ALARM_RAISED, value=signal.alarm_type,
                   note=f"{signal.severity.zh} · {signal.zh}\n{signal.severity.en} · {signal.en}")


def _new_alarm(device_id: int, customer_id: int, profile: Profile, signal: Signal) -> Alarm:
    return Alarm(device_id=device_id, customer_id=customer_id, alarm_type=signal.alarm_type,
                 category=signal.category, severity=signal.severity.value, state=AlarmState.ACTIVE_UNACK.value,
                 message_zh=signal.zh, message_en=signal.en, first_at=signal.at, last_at=signal.at, count=1,
                 last_value=signal.value, acked_by_name="", ack_note="", escalation_level=0,
                 next_escalation_at=escalation_due(profile, signal.at, 0) if escalates(signal.severity) else None)


def _mark(signal: Signal) -> dict[str, str]:
    return {"at": signal.at.isoformat(), "label_zh": signal.zh, "label_en": signal.en}


def _clear(session: Session, alarm: Alarm, signal: Signal, now: datetime) -> None:
    old = alarm.state
    alarm.state = clear(AlarmState(alarm.state)).value
    alarm.cleared_at = signal.at
    alarm.last_value = signal.value if signal.value is not None else alarm.last_value
    alarm.next_escalation_at = None
    record_change(session, RMS, at=now, entity="alarm", entity_id=alarm.id, action="clear",
                  changes={"state": (old, alarm.state)}, reason=signal.en)
    if alarm.ticket_id is not None:
        label_zh, label_en = type_label(alarm.alarm_type, "zh"), type_label(alarm.alarm_type, "en")
        note_on_ticket(session, alarm.ticket_id, now=now, kind=EventKind.ALARM_CLEARED, value=alarm.alarm_type,
                       note=f"{label_zh}已于 {signal.at.isoformat(timespec='minutes')} 恢复({signal.zh})。"
                            f"请确认设备正常后解决工单。\n{label_en} cleared at "
                            f"{signal.at.isoformat(timespec='minutes')} ({signal.en}). "
                            f"Check the device and resolve the ticket if it is fine.")
        _extend_snapshot(session, alarm, signal)


# ------------------------------------------------------------------------------------------ snapshots


def _series(session: Session, device_id: int, start: datetime, end: datetime) -> dict[str, list[list[Any]]]:
    """The chart's points from ``telemetry_query.series`` (raw rows for short spans), thinned to
    ``SNAPSHOT_POINTS`` per field, as ``[iso, value]`` pairs; ``end`` is included."""
    from incucare.services.telemetry_query import series  # it imports the ingest, which imports this module

    points = series(session, device_id, start, end + timedelta(microseconds=1), SNAPSHOT_FIELDS)
    fields: dict[str, list[list[Any]]] = {}
    for name in SNAPSHOT_FIELDS:
        pairs = [[ts.isoformat(), value] for ts, value in points.get(name, [])]
        step = max(1, -(-len(pairs) // SNAPSHOT_POINTS))
        fields[name] = pairs[::step]
    return fields


def build_snapshot(session: Session, device: Device, event_at: datetime, marks: list[dict[str, str]],
                   *, end: datetime | None = None) -> dict[str, Any]:
    """The telemetry around an event in the format the ticket page charts (see ``snapshot_for_ticket``)."""
    end = min(end or event_at, event_at + SNAPSHOT_MAX_SPAN)
    return {"device_id": device.id, "serial": device.serial, "event_at": event_at.isoformat(),
            "fields": _series(session, device.id, event_at - SNAPSHOT_BEFORE, end), "marks": marks}


def _extend_snapshot(session: Session, alarm: Alarm, signal: Signal) -> None:
    """On clearing, the stored chart grows to the recovery and gets a mark for it."""
    row = session.scalar(select(TicketSnapshot).where(TicketSnapshot.source_kind == "alarm",
                                                      TicketSnapshot.source_id == str(alarm.id)))
    if row is None or not row.snapshot:
        return
    event_at = datetime.fromisoformat(row.snapshot["event_at"])
    marks = [*row.snapshot.get("marks", []), _mark(signal)]
    row.snapshot = build_snapshot(session, alarm.device, event_at, marks, end=signal.at)


def snapshot_for_ticket(session: Session, ticket_id: int) -> dict[str, Any] | None:
    """The telemetry snapshot stored when an alarm or finding opened the ticket, or None.

    Format: ``{"device_id", "serial", "event_at": iso, "fields": {"co2_pct": [[iso, value], ...], ...},
    "marks": [{"at": iso, "label_zh", "label_en"}]}``. The caller has already checked the ticket's scope.
    """
    return first_snapshot(session, ticket_id)


# ------------------------------------------------------------------------------------------ reading and acking


def _visible(actor: Actor) -> ColumnElement[bool]:
    if actor.scope.everything:
        return Alarm.id.is_not(None)
    if actor.scope.customer_id is not None:
        return Alarm.customer_id == actor.scope.customer_id
    return Alarm.device_id.in_(select(Device.id).where(scoping.devices_visible(actor.scope)))


def list_alarms(session: Session, actor: Actor, *, states: Sequence[AlarmState] = (), active_only: bool = False,
                severity: Severity | None = None, device_serial: str | None = None, customer_id: int | None = None,
                limit: int = 50, offset: int = 0) -> Page[Alarm]:
    """Alarms the caller may see (a customer only its own devices, a partner its region), newest first."""
    query = (select(Alarm).options(joinedload(Alarm.device).joinedload(Device.customer))
             .where(_visible(actor)))
    if states:
        query = query.where(Alarm.state.in_(sorted({s.value for s in states})))
    if active_only:
        query = query.where(Alarm.cleared_at.is_(None))
    if severity is not None:
        query = query.where(Alarm.severity == severity.value)
    if device_serial:
        query = query.where(Alarm.device_id.in_(select(Device.id).where(Device.serial == device_serial.strip())))
    if customer_id is not None:
        query = query.where(Alarm.customer_id == customer_id)
    query = query.order_by(Alarm.first_at.desc(), Alarm.id.desc())
    return paginate(session, query, limit=limit, offset=offset)


def get_alarm(session: Session, actor: Actor, alarm_id: int, *, for_update: bool = False) -> Alarm:
    """One alarm in the caller's scope (outside it: not found, never forbidden)."""
    query = select(Alarm).options(joinedload(Alarm.device)).where(Alarm.id == alarm_id, _visible(actor))
    if for_update:
        query = query.with_for_update(of=Alarm)
    alarm = session.scalar(query)
    if alarm is None:
        raise NotFound(f"alarm {alarm_id} not found", zh=f"未找到报警 {alarm_id}")
    return alarm


def acknowledge_alarm(session: Session, actor: Actor, alarm_id: int, *, now: datetime, note: str = "") -> Alarm:
    """Someone has taken notice: the call tree stops; the customer (own devices) or service staff may do it."""
    if actor.user_id is None:
        raise PermissionDenied("acknowledging needs a signed-in person", zh="确认报警需要登录用户")
    text = note.strip()
    if len(text) > NOTE_MAX:
        raise ValidationFailed(f"note is longer than {NOTE_MAX} characters", zh=f"备注不能超过 {NOTE_MAX} 个字符")
    alarm = get_alarm(session, actor, alarm_id, for_update=True)
    old = alarm.state
    alarm.state = acknowledge(AlarmState(alarm.state)).value
    alarm.acked_at, alarm.acked_by_id, alarm.acked_by_name, alarm.ack_note = now, actor.user_id, actor.name, text
    alarm.next_escalation_at = None
    record_change(session, actor, at=now, entity="alarm", entity_id=alarm.id, action="acknowledge",
                  changes={"state": (old, alarm.state)}, reason=text)
    session.flush()
    return alarm


# ------------------------------------------------------------------------------------------ background


def check_offline(session: Session, *, now: datetime) -> int:
    """Raise the offline alarm of devices silent for their profile's ``offline.minutes``; returns how many.

    Reads the device twin's ``last_seen``; devices that already have an active offline alarm are skipped in SQL.
    """
    profiles = _profiles(session)
    shortest = min([p.offline.minutes for p in profiles.values() if p.offline.enabled]
                   + ([Profile().offline.minutes] if None not in profiles else []), default=None)
    if shortest is None:
        return 0
    has_offline = exists(select(Alarm.id).where(Alarm.device_id == DeviceTwin.device_id,
                                                Alarm.alarm_type == AlarmType.OFFLINE.value,
                                                Alarm.cleared_at.is_(None)))
    rows = session.execute(
        select(DeviceTwin.device_id, DeviceTwin.last_seen, Device.model_id, Device.customer_id, Customer.kind,
               AlarmRuleState.state)
        .join(Device, Device.id == DeviceTwin.device_id).join(Customer, Customer.id == Device.customer_id)
        .outerjoin(AlarmRuleState, AlarmRuleState.device_id == DeviceTwin.device_id)
        .where(DeviceTwin.last_seen <= now - timedelta(minutes=shortest), ~has_offline)).all()
    changed: dict[int, dict[str, Any]] = {}
    had_row: set[int] = set()
    plain: list[Alarm] = []
    special: list[tuple[int, Profile, Signal]] = []
    for device_id, last_seen, model_id, customer_id, kind, stored in rows:
        profile = _profile_of(profiles, model_id)
        state, signal = go_offline(profile, stored or {}, last_seen, now, customer_kind=kind)
        if signal is None:
            continue
        changed[device_id] = state
        if stored is not None:
            had_row.add(device_id)
        if opens_ticket(signal.severity) or escalates(signal.severity):
            special.append((device_id, profile, signal))
        else:  # the common case, and a mass outage's: inserted together, no ticket, no call tree
            plain.append(_new_alarm(device_id, customer_id, profile, signal))
    _write_states(session, changed, had_row, now)
    try:
        with session.begin_nested():
            session.add_all(plain)
    except IntegrityError:  # another worker raised some of them meanwhile: one by one, counting repeats
        for alarm in plain:
            profile = _profile_of(profiles, None)
            apply_signal(session, alarm.device_id, profile, _signal_of(alarm), now=now)
    else:
        for alarm in plain:
            record_change(session, RMS, at=now, entity="alarm", entity_id=alarm.id, action="raise",
                          changes={"device_id": (None, alarm.device_id), "type": (None, alarm.alarm_type),
                                   "severity": (None, alarm.severity)}, reason=alarm.message_en)
    for device_id, profile, signal in special:
        apply_signal(session, device_id, profile, signal, now=now)
    return len(plain) + len(special)


def _signal_of(alarm: Alarm) -> Signal:
    return Signal(True, alarm.alarm_type, alarm.first_at, Severity(alarm.severity), alarm.category,
                  alarm.message_zh, alarm.message_en, alarm.last_value)


def _customer_recipients(session: Session, customer_id: int) -> tuple[list[User], list[str]]:
    users = list(session.scalars(select(User).where(User.customer_id == customer_id, User.active.is_(True),
                                                    User.role == Role.CUSTOMER.value).order_by(User.id)))
    if users:
        return users, []
    contact = session.scalar(select(Contact).where(Contact.customer_id == customer_id, Contact.email != "")
                             .order_by(Contact.is_primary.desc(), Contact.id).limit(1))
    if contact is not None:
        return [], [contact.email]
    customer = session.get(Customer, customer_id)
    return [], [customer.email] if customer is not None and customer.email else []


def _step_recipients(session: Session, alarm: Alarm, step: CallTreeStep) -> tuple[list[User], list[str]]:
    region_id = alarm.device.site.region_id
    if step is CallTreeStep.CUSTOMER:
        return _customer_recipients(session, alarm.customer_id)
    if step is CallTreeStep.TIER1:
        person = duty_person(session, Tier.REMOTE, region_id) or first_active(session, Role.AGENT)
    else:
        person = duty_person(session, Tier.HQ, region_id)
    return ([person] if person is not None else []), []


def escalate_alarms(session: Session, *, now: datetime, limit: int = 200) -> int:
    """Walk the call tree of unacknowledged critical alarms whose next step is due; returns the steps taken.

    Each step notifies its people through the outbox (in-app and e-mail, their language), once: dedupe keys
    name the alarm, the step and the recipient, so a round run twice sends nothing twice. Steps that fell
    due while no worker ran are all taken now, in order.
    """
    due = list(session.scalars(
        select(Alarm).options(joinedload(Alarm.device).joinedload(Device.site), joinedload(Alarm.device)
                              .joinedload(Device.customer))
        .where(Alarm.next_escalation_at <= now, Alarm.state == AlarmState.ACTIVE_UNACK.value)
        .order_by(Alarm.next_escalation_at, Alarm.id).limit(limit).with_for_update(skip_locked=True, of=Alarm)))
    if not due:
        return 0
    profiles = _profiles(session)
    steps = 0
    for alarm in due:
        profile = _profile_of(profiles, alarm.device.model_id)
        while alarm.next_escalation_at is not None and alarm.next_escalation_at <= now:
            step = CALL_TREE[alarm.escalation_level]
            _notify_step(session, alarm, step, now)
            alarm.escalation_level += 1
            alarm.next_escalation_at = escalation_due(profile, alarm.first_at, alarm.escalation_level)
            record_change(session, RMS, at=now, entity="alarm", entity_id=alarm.id, action="escalate",
                          changes={"call_tree": (None, step.value)})
            steps += 1
    session.flush()
    return steps


def _notify_step(session: Session, alarm: Alarm, step: CallTreeStep, now: datetime) -> None:
    users, emails = _step_recipients(session, alarm, step)
    context: dict[str, object] = {
        "customer": alarm.device.customer.name, "device": alarm.device.serial,
        "alarm": {"zh": type_label(alarm.alarm_type, "zh"), "en": type_label(alarm.alarm_type, "en")},
        "since": alarm.first_at, "message": {"zh": alarm.message_zh, "en": alarm.message_en},
        "severity": Severity(alarm.severity), "step": step,
        "url": f"/alarms?device={alarm.device.serial}",
    }
    for user in users:
        notify_user(session, user, now=now, template="alarm_escalated", context=context, ticket_id=alarm.ticket_id,
                    critical=True, dedupe_key=f"alarm:{alarm.id}:{step.value}:{user.id}")
    for address in emails:
        enqueue(session, now=now, template="alarm_escalated", channel="email", recipient=address, context=context,
                ticket_id=alarm.ticket_id, critical=True, dedupe_key=f"alarm:{alarm.id}:{step.value}:mail")
    if not users and not emails:
        log.warning("alarm %s: nobody to call at step %s", alarm.id, step.value)


def run_alarm_round(session: Session, *, now: datetime) -> tuple[int, int]:
    """The background round's alarm work: offline check, then the call tree; (offline raised, steps taken)."""
    return check_offline(session, now=now), escalate_alarms(session, now=now)
