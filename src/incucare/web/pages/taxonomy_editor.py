"""The fault-taxonomy editor for service managers: one category at a time, with a preview of accuracy.

A category's phrases are the part managers tune most, so the form shows them as ``phrase = weight``
lines; "preview" scores the edit on the labelled evaluation set without saving, "save" stores a whole
new version (the previous ones stay and any of them can be restored).
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from incucare.adapters.db.tables import TaxonomyVersion
from incucare.adapters.kb.taxonomy import shipped_taxonomy_data
from incucare.domain.errors import DomainError, NotFound, ValidationFailed
from incucare.domain.model import Tier
from incucare.services import taxonomy as svc
from incucare.web.pages.context import CsrfFailed, Page, PageDep, act, check_csrf, flash, in_language

router = APIRouter(include_in_schema=False)
BASE = "/admin/taxonomy"
_KEY = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def editor_page(page: PageDep) -> Page:
    """The page state of someone who may edit the taxonomy; everyone else gets the 403 page."""
    svc.check_editor(page.actor)
    return page


EditorPage = Annotated[Page, Depends(editor_page)]


def _url(page: Page, path: str = "") -> str:
    return in_language(page.request, f"{BASE}{path}")


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.replace("\r", "").split("\n") if line.strip()]


_WEIGHTED = re.compile(r"^(?P<phrase>.+?)\s*[=:：]\s*(?P<weight>[^=:：]*)$")


def _phrases(raw: str, field: str) -> dict[str, float]:
    """``phrase = weight`` lines (weight defaults to 1; ``=``, ``:`` or ``：`` separate the two)."""
    out: dict[str, float] = {}
    for n, line in enumerate(_lines(raw), start=1):
        match = _WEIGHTED.match(line)
        phrase, weight = (match["phrase"], match["weight"].strip()) if match else (line, "1")
        try:
            value = float(weight)
        except ValueError:
            raise ValidationFailed(f"{field}, line {n}: the weight '{weight}' is not a number",
                                   zh=f"{field} 第 {n} 行:权重「{weight}」不是数字") from None
        if not 0 < value <= 10:
            raise ValidationFailed(f"{field}, line {n}: weights go from 0.1 to 10",
                                   zh=f"{field} 第 {n} 行:权重应在 0.1 到 10 之间")
        out[phrase.strip().lower()] = value
    return out


def _parts(raw: str) -> list[dict[str, str]]:
    """``number | 中文名 | English name`` lines."""
    parts = []
    for n, line in enumerate(_lines(raw), start=1):
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 3 or not all(cells):
            raise ValidationFailed(f"parts, line {n}: write 'part number | 中文名 | English name'",
                                   zh=f"备件第 {n} 行:格式为「备件号 | 中文名 | English name」")
        parts.append({"number": cells[0], "zh": cells[1], "en": cells[2]})
    return parts


def _form_values(category: dict[str, Any]) -> dict[str, str]:
    """A stored category as the edit form's text fields."""
    def weighted(phrases: dict[str, float]) -> str:
        return "\n".join(f"{p} = {w:g}" for p, w in phrases.items())

    return {
        "key": category["key"], "zh": category["zh"], "en": category["en"],
        "default_tier": str(category["default_tier"]), "skills": ", ".join(category["skills"]),
        "parts": "\n".join(f"{p['number']} | {p['zh']} | {p['en']}" for p in category["parts"]),
        "steps_zh": "\n".join(category["steps_zh"]), "steps_en": "\n".join(category["steps_en"]),
        "phrases_zh": weighted(category["keywords"]["zh"]), "phrases_en": weighted(category["keywords"]["en"]),
    }


def _category_from(fields: dict[str, str]) -> dict[str, Any]:
    """The posted form as a category of the taxonomy's JSON form (validation messages name the field)."""
    tier = fields.get("default_tier", "").strip()
    if tier not in {str(int(t)) for t in Tier}:
        raise ValidationFailed("default tier must be 1, 2 or 3", zh="默认响应级别必须是 1、2 或 3")
    for name in ("zh", "en"):
        if not fields.get(name, "").strip():
            raise ValidationFailed(f"the {name} name is required", zh=f"请填写{'中文' if name == 'zh' else '英文'}名称")
    return {
        "key": fields["key"], "zh": fields["zh"].strip(), "en": fields["en"].strip(), "default_tier": int(tier),
        "skills": [s for s in re.split(r"[,，、\s]+", fields.get("skills", "")) if s],
        "parts": _parts(fields.get("parts", "")),
        "steps_zh": _lines(fields.get("steps_zh", "")), "steps_en": _lines(fields.get("steps_en", "")),
        "keywords": {"zh": _phrases(fields.get("phrases_zh", ""), "zh phrases"),
                     "en": _phrases(fields.get("phrases_en", ""), "en phrases")},
    }


def _with_category(data: dict[str, Any], category: dict[str, Any]) -> dict[str, Any]:
    """A copy of the taxonomy with ``category`` replacing the one of the same key (or added at the end)."""
    new = copy.deepcopy(data)
    for i, existing in enumerate(new["categories"]):
        if existing["key"] == category["key"]:
            new["categories"][i] = category
            return new
    new["categories"].append(category)
    return new


@router.get(BASE, response_class=HTMLResponse)
def overview(page: EditorPage) -> Response:
    """Every category with its default tier, parts and phrase counts, the accuracy now, and the versions."""
    version, data = svc.current_data(page.uow.session)
    scores = svc.compare(page.uow.session, data)["after"]
    return page.render("taxonomy.html", version=version, categories=data["categories"], scores=scores,
                       versions=svc.list_versions(page.uow.session, page.actor))


def _category(data: dict[str, Any], key: str) -> dict[str, Any]:
    for category in data["categories"]:
        if category["key"] == key:
            return dict(category)
    raise NotFound(f"category '{key}' not found", zh=f"故障分类「{key}」不存在")


@router.get(BASE + "/new", response_class=HTMLResponse)
def new_category(page: EditorPage) -> Response:
    """An empty form for a category that does not exist yet."""
    values = {"key": "", "zh": "", "en": "", "default_tier": "1", "skills": "remote_support", "parts": "",
              "steps_zh": "", "steps_en": "", "phrases_zh": "", "phrases_en": ""}
    return page.render("taxonomy_category.html", values=values, is_new=True, preview=None, error=None)


@router.get(BASE + "/{key}", response_class=HTMLResponse)
def edit_category(key: str, page: EditorPage) -> Response:
    """The edit form of one category."""
    _, data = svc.current_data(page.uow.session)
    return page.render("taxonomy_category.html", values=_form_values(_category(data, key)), is_new=False,
                       preview=None, error=None)


async def _fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post(BASE + "/{key}", response_class=HTMLResponse)
def save_category(key: str, page: EditorPage, fields: Annotated[dict[str, str], Depends(_fields)]) -> Response:
    """Preview (score only) or save the category as part of a new taxonomy version."""
    is_new = key == "new"
    values = {k: fields.get(k, "") for k in ("key", "zh", "en", "default_tier", "skills", "parts", "steps_zh",
                                              "steps_en", "phrases_zh", "phrases_en")}
    values["key"] = values["key"].strip().lower() if is_new else key
    try:
        check_csrf(page.request, fields.get("csrf", ""))
        _, data = svc.current_data(page.uow.session)
        if is_new:
            if not _KEY.match(values["key"]):
                raise ValidationFailed("the key is 2-32 lower-case letters, digits or _ and starts with a letter",
                                       zh="分类键为 2-32 位小写字母、数字或下划线,并以字母开头")
            if any(c["key"] == values["key"] for c in data["categories"]):
                raise ValidationFailed(f"category '{values['key']}' already exists",
                                       zh=f"故障分类「{values['key']}」已存在")
        else:
            _category(data, key)
        proposed = _with_category(data, _category_from(values))
        scores = svc.compare(page.uow.session, proposed)
        if fields.get("action") != "save":
            return page.render("taxonomy_category.html", values=values, is_new=is_new, preview=scores, error=None)
        saved = svc.save(page.uow.session, page.actor, proposed, now=page.request.app.state.clock(),
                         note=fields.get("note", "") or f"edit {values['key']}")
        page.uow.commit()
    except CsrfFailed:
        return page.render("error.html", status_code=403, status=403, message=page.t("error.csrf"))
    except DomainError as exc:
        page.uow.session.rollback()
        return page.render("taxonomy_category.html", status_code=422, values=values, is_new=is_new, preview=None,
                           error=exc.text(page.lang))
    flash(page.request, page.t("taxonomy.saved", version=saved.id, before=scores["before"]["category"],
                               after=scores["after"]["category"], tier_before=scores["before"]["tier"],
                               tier_after=scores["after"]["tier"]))
    return RedirectResponse(_url(page), status_code=303)


@router.post(BASE + "/restore/{version_id}")
def restore(version_id: int, page: EditorPage, csrf: Annotated[str, Form()] = "") -> Response:
    """Make an earlier version (0 = the shipped file) current again, as a new version."""
    def restored() -> str:
        if version_id == 0:
            data = shipped_taxonomy_data()
        else:
            version = page.uow.session.get(TaxonomyVersion, version_id)
            if version is None:
                raise NotFound(f"taxonomy version {version_id} not found", zh=f"分类版本 {version_id} 不存在")
            data = copy.deepcopy(version.data)
        saved = svc.save(page.uow.session, page.actor, data, now=page.request.app.state.clock(),
                         note=f"restore version {version_id}")
        return page.t("taxonomy.restored", version=version_id, new=saved.id)

    return act(page, csrf, _url(page), restored)
