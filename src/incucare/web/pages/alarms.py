"""Alarm pages (remote monitoring): the alarm list with acknowledge buttons, and the per-model profile editor.

The rules, scope and role checks live in ``services.alarms`` (shared with the JSON API); these routes turn
form fields into values and run one use case per post.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from incucare.adapters.db.tables import DeviceModel
from incucare.domain.alarms import CALL_TREE, AlarmState, Severity, type_label
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.services import alarms as svc
from incucare.web.i18n import translate
from incucare.web.pages.context import Page, PageDep, act, in_language
from incucare.web.pages.routes import _pager

router = APIRouter(include_in_schema=False)


async def _form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(_form_fields)]


def _enum_or_none(enum: Any, raw: str | None) -> Any:
    try:
        return enum(raw) if raw else None
    except ValueError:
        return None


@router.get("/alarms", response_class=HTMLResponse)
def alarm_list(page: PageDep, state: str | None = None, severity: str | None = None, device: str | None = None,
               active: str | None = None, offset: int = 0) -> Response:
    """Alarms in the caller's scope, newest first, with an acknowledge form on the unacknowledged ones."""
    chosen_state = _enum_or_none(AlarmState, state)
    chosen_severity = _enum_or_none(Severity, severity)
    result = svc.list_alarms(page.uow.session, page.actor, states=[chosen_state] if chosen_state else [],
                             severity=chosen_severity, device_serial=device or None, active_only=active == "1",
                             limit=50, offset=max(0, offset))
    return page.render(
        "alarms.html", alarms=result.items, pager=_pager(result, page.request),
        filters={"state": chosen_state.value if chosen_state else "",
                 "severity": chosen_severity.value if chosen_severity else "", "device": device or "",
                 "active": active == "1"},
        states=list(AlarmState), severities=list(Severity), type_label=type_label,
        back=page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else ""),
    )


@router.post("/alarms/{alarm_id}/ack")
def post_ack(page: PageDep, alarm_id: int, fields: FormFields) -> Response:
    """Acknowledge one alarm with an optional note; back to the list as it was filtered."""
    back = fields.get("back", "")
    if not back.startswith("/alarms"):
        back = in_language(page.request, "/alarms")

    def run() -> None:
        svc.acknowledge_alarm(page.uow.session, page.actor, alarm_id, now=page.request.app.state.clock(),
                              note=fields.get("note", ""))

    return act(page, fields.get("csrf"), back, run, page.t("alarms.acked"))


# ---------------------------------------------------------------- profiles (service managers edit)


def _profile_key(raw: str) -> int | None:
    return None if raw in ("", "default") else int(raw) if raw.isdigit() else -1


@router.get("/alarms/profiles", response_class=HTMLResponse)
def profile_page(page: PageDep, model: str = "default") -> Response:
    """The alarm profile of a device model (or the fleet default); managers get an edit form."""
    model_id = _profile_key(model)
    if model_id == -1:
        model_id = None
    profile, row = svc.get_profile(page.uow.session, page.actor, model_id)
    models = page.uow.session.scalars(select(DeviceModel).order_by(DeviceModel.brand, DeviceModel.model)).all()
    config = profile.to_dict()
    return page.render("alarms_profile.html", models=models, model_id=model_id, row=row, config=config,
                       faults_json=json.dumps(config["faults"], ensure_ascii=False, indent=1),
                       severities=list(Severity), call_tree=CALL_TREE, may_edit=page.actor.is_manager)


def _number(fields: dict[str, str], key: str, page: Page) -> float:
    raw = fields.get(key, "").strip().replace(",", ".")
    try:
        return float(raw)
    except ValueError:
        raise ValidationFailed(translate("en", "alarms.bad_number", field=key, value=raw),
                               zh=translate("zh", "alarms.bad_number", field=key, value=raw)) from None


def config_from_form(fields: dict[str, str], page: Page) -> dict[str, Any]:
    """The profile JSON from the editor's fields (the service validates every value)."""
    def deviation(prefix: str) -> dict[str, Any]:
        return {"enabled": f"{prefix}_enabled" in fields, "setpoint": _number(fields, f"{prefix}_setpoint", page),
                "band": _number(fields, f"{prefix}_band", page), "minutes": _number(fields, f"{prefix}_minutes", page),
                "severity": fields.get(f"{prefix}_severity", "major")}

    def simple(prefix: str, minutes: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": f"{prefix}_enabled" in fields,
                               "severity": fields.get(f"{prefix}_severity", "major")}
        if minutes:
            out["minutes"] = _number(fields, f"{prefix}_minutes", page)
        return out

    try:
        faults = json.loads(fields.get("faults", "") or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"fault codes: not valid JSON ({exc.msg}, line {exc.lineno})",
                               zh=f"故障代码:JSON 格式错误({exc.msg},第 {exc.lineno} 行)") from None
    return {
        "temperature": deviation("temperature"), "co2": deviation("co2"),
        "door_grace_minutes": _number(fields, "door_grace_minutes", page),
        "over_temp_delta": _number(fields, "over_temp_delta", page),
        "over_temperature": simple("over_temperature"), "door_open": simple("door_open", True),
        "offline": simple("offline", True), "water_low": simple("water_low"), "power_loss": simple("power_loss"),
        "faults": faults,
        "call_tree_minutes": [_number(fields, f"call_tree_{i}", page) for i in range(len(CALL_TREE))],
        "ivf_culture_critical": "ivf_culture_critical" in fields,
    }


@router.post("/alarms/profiles")
def post_profile(page: PageDep, fields: FormFields) -> Response:
    """Save a model's profile (service managers; the service refuses anyone else and bad values)."""
    model = fields.get("model", "default")
    model_id = _profile_key(model)
    lang = page.request.query_params.get("lang")
    back = f"/alarms/profiles?model={model_id if model_id not in (None, -1) else 'default'}"
    back += f"&lang={lang}" if lang in ("zh", "en") else ""

    def run() -> None:
        if not page.actor.is_manager:
            raise PermissionDenied("only a service manager edits alarm profiles", zh="只有售后经理可以编辑报警配置")
        svc.put_profile(page.uow.session, page.actor, None if model_id == -1 else model_id,
                        config_from_form(fields, page), now=page.request.app.state.clock())

    return act(page, fields.get("csrf"), back, run, page.t("alarms.profile_saved"))
