"""SLA settings pages for administrators and service managers: policies, holiday overrides, the duty roster
and the list of tickets flagged for buck-passing.

The rules live in services (sla_policies, duty, handoffs) and are the same ones the JSON API uses; these
routes only turn form text into values and show the services' own validation messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from incucare.adapters.db.tables import SlaPolicy
from incucare.domain.entitlement import CLOCKS
from incucare.domain.errors import DomainError, PermissionDenied, ValidationFailed
from incucare.domain.model import Priority, Tier
from incucare.services import duty, handoffs
from incucare.services import installed_base as ib
from incucare.services import sla_policies as policies
from incucare.web.i18n import translate
from incucare.web.pages.context import CsrfFailed, Page, PageDep, act, check_csrf, flash, in_language
from incucare.web.pages.sla_view import duration

router = APIRouter(include_in_schema=False)
SETTINGS = "/admin/sla"


def manager_page(page: PageDep) -> Page:
    """The page state of an administrator or service manager; everyone else gets the 403 page."""
    if not page.actor.is_manager:
        raise PermissionDenied(translate("en", "admin.sla.forbidden"), zh=translate("zh", "admin.sla.forbidden"))
    return page


ManagerPage = Annotated[Page, Depends(manager_page)]


async def _form_fields(request: Request) -> dict[str, str]:
    """Every text field of a posted form (the policy form has one field per priority and clock)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(_form_fields)]


def _settings_url(page: Page, anchor: str = "") -> str:
    return in_language(page.request, SETTINGS, anchor)


def _settings_action(page: Page, csrf: str, anchor: str, action: Callable[[], None]) -> Response:
    """Run one change from the settings page, then go back to it (303) with the outcome flashed."""
    return act(page, csrf, _settings_url(page, anchor), action, page.t("admin.saved"))


def _int_or_none(raw: str) -> int | None:
    try:
        return int(raw) if raw.strip() else None
    except ValueError:
        return None


def _number(raw: str, *, required: bool = False) -> int | float | str | None:
    """A typed number; empty is None (or the empty text when required); other text is passed on as text so
    the service's own check names the problem in its own words."""
    text = raw.strip()
    if not text:
        return text if required else None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _thresholds(raw: str) -> list[int]:
    """"50, 75, 90" (also with Chinese commas or spaces) as whole percentages."""
    try:
        return [int(part) for part in re.split(r"[,，、\s]+", raw.strip()) if part]
    except ValueError:
        raise ValidationFailed(translate("en", "admin.thresholds_invalid"),
                               zh=translate("zh", "admin.thresholds_invalid")) from None


def _target_field(priority: str, clock: str) -> str:
    return f"target.{priority}.{clock}"


def _policy_values(policy: SlaPolicy) -> dict[str, str]:
    """The edit form filled from a stored policy."""
    values = {_target_field(p.value, c): str((policy.targets.get(p.value) or {}).get(c, ""))
              for p in Priority for c in CLOCKS}
    fraction = policy.hq_escalation_fraction
    values.update({
        "calendar_id": str(policy.calendar_id),
        "warn_thresholds": ", ".join(str(t) for t in policy.warn_thresholds),
        "pause_resolution_on_waiting_parts": "1" if policy.pause_resolution_on_waiting_parts else "",
        "remote_window_minutes": "" if policy.remote_window_minutes is None else str(policy.remote_window_minutes),
        "hq_escalation_fraction": "" if fraction is None else f"{fraction:g}",
        "handoff_accept_minutes": str(policy.handoff_accept_minutes),
    })
    return values


def _policy_changes(fields: dict[str, str]) -> dict[str, Any]:
    """The posted form as the ``data`` that sla_policies.save_policy validates and stores."""
    data: dict[str, Any] = {
        "targets": {p.value: {c: _number(fields.get(_target_field(p.value, c), "")) for c in CLOCKS}
                    for p in Priority},
        "warn_thresholds": _thresholds(fields.get("warn_thresholds", "")),
        "pause_resolution_on_waiting_parts": fields.get("pause_resolution_on_waiting_parts") == "1",
        "remote_window_minutes": _number(fields.get("remote_window_minutes", "")),
        "hq_escalation_fraction": _number(fields.get("hq_escalation_fraction", "")),
        "handoff_accept_minutes": _number(fields.get("handoff_accept_minutes", ""), required=True),
    }
    calendar_id = _int_or_none(fields.get("calendar_id", ""))
    if calendar_id is not None:
        data["calendar_id"] = calendar_id
    return data


def _name(page: Page, row: Any) -> str:
    """A row's ``name_zh``/``name_en`` in the page language."""
    return str(row.name_en if page.lang == "en" else row.name_zh)


# ---------------------------------------------------------------- pages


@router.get(SETTINGS, response_class=HTMLResponse)
def settings(page: ManagerPage) -> Response:
    """Policies, this year's and next year's calendar overrides, the duty roster and the ping-pong list."""
    session = page.uow.session
    this_year = page.request.app.state.clock().astimezone(page.zone).year
    regions = ib.list_regions(session)
    flagged, flagged_total = handoffs.flagged(session, page.actor, limit=50)
    return page.render(
        "sla_settings.html", policies=policies.list_policies(session), calendars=policies.list_calendars(session),
        overrides=policies.list_overrides(session, this_year, this_year + 1), roster=duty.roster(session),
        regions=regions, region_names={r.id: _name(page, r) for r in regions}, candidates=duty.candidates(session),
        flagged=flagged, flagged_total=flagged_total, priorities=list(Priority), clocks=CLOCKS, tiers=list(Tier),
        roles=duty.DUTY_ROLES, name=lambda row: _name(page, row), minutes=lambda m: duration(m, page.lang),
    )


def _policy_page(page: Page, policy: SlaPolicy, values: dict[str, str], status_code: int = 200,
                 error: str | None = None) -> Response:
    return page.render("sla_policy.html", status_code=status_code, policy=policy, values=values, error=error,
                       calendars=policies.list_calendars(page.uow.session), priorities=list(Priority), clocks=CLOCKS,
                       field=_target_field, name=lambda row: _name(page, row))


@router.get(SETTINGS + "/policies/{policy_id}", response_class=HTMLResponse)
def policy_form(page: ManagerPage, policy_id: int) -> Response:
    """One policy's targets (minutes per priority and clock), thresholds, pauses and escalation timing."""
    policy = policies.get_policy(page.uow.session, policy_id)
    return _policy_page(page, policy, _policy_values(policy))


@router.post(SETTINGS + "/policies/{policy_id}")
def policy_save(page: ManagerPage, policy_id: int, fields: FormFields) -> Response:
    """Save through sla_policies.save_policy; a refusal shows the form again with the input and the message."""
    policy = policies.get_policy(page.uow.session, policy_id)
    try:
        check_csrf(page.request, fields.get("csrf"))
        policies.save_policy(page.uow.session, page.actor, now=page.request.app.state.clock(), code="",
                             data=_policy_changes(fields), policy_id=policy_id)
        page.uow.commit()
    except CsrfFailed:
        return page.render("error.html", status_code=403, status=403, message=page.t("error.csrf"))
    except DomainError as exc:
        page.uow.session.rollback()
        policy = policies.get_policy(page.uow.session, policy_id)
        kept = {**_policy_values(policy), **fields,
                "pause_resolution_on_waiting_parts": fields.get("pause_resolution_on_waiting_parts", "")}
        return _policy_page(page, policy, kept, 422, exc.text(page.lang))
    flash(page.request, page.t("admin.saved"))
    return RedirectResponse(_settings_url(page, "policies"), status_code=303)


@router.post(SETTINGS + "/overrides")
def override_add(page: ManagerPage, day: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "holiday",
                 name: Annotated[str, Form()] = "", calendar_id: Annotated[str, Form()] = "",
                 csrf: Annotated[str, Form()] = "") -> Response:
    """Declare a day a holiday or a working day (调休), for one calendar or all."""
    def act() -> None:
        try:
            chosen = date.fromisoformat(day.strip())
        except ValueError:
            raise ValidationFailed(translate("en", "admin.day_invalid"),
                                   zh=translate("zh", "admin.day_invalid")) from None
        policies.set_override(page.uow.session, page.actor, now=page.request.app.state.clock(), day=chosen,
                              working=kind == "working", name=name.strip(), calendar_id=_int_or_none(calendar_id))

    return _settings_action(page, csrf, "overrides", act)


@router.post(SETTINGS + "/duty")
def duty_add(page: ManagerPage, tier: Annotated[str, Form()] = "", region_id: Annotated[str, Form()] = "",
             role: Annotated[str, Form()] = "", user_id: Annotated[str, Form()] = "",
             csrf: Annotated[str, Form()] = "") -> Response:
    """Put someone on the roster for a tier and region."""
    def act() -> None:
        duty.add_duty(page.uow.session, page.actor, now=page.request.app.state.clock(),
                      tier=_int_or_none(tier) or 0, region_id=_int_or_none(region_id), role=role,
                      user_id=_int_or_none(user_id) or 0)

    return _settings_action(page, csrf, "roster", act)


@router.post(SETTINGS + "/duty/{duty_id}/remove")
def duty_remove(page: ManagerPage, duty_id: int, csrf: Annotated[str, Form()] = "") -> Response:
    """Take someone off the roster."""
    def act() -> None:
        duty.remove_duty(page.uow.session, page.actor, now=page.request.app.state.clock(), duty_id=duty_id)

    return _settings_action(page, csrf, "roster", act)
