"""Editing the fault taxonomy (API and page): versions, validation, accuracy preview, effect on triage."""

from __future__ import annotations

import copy
import re

from sqlalchemy import func, select

from incucare.adapters.db.tables import TaxonomyVersion
from tests.world import PASSWORD


def _with_uv_lamp(data):
    new = copy.deepcopy(data)
    new["categories"].append({
        "key": "uv_lamp", "zh": "紫外灯", "en": "UV lamp", "default_tier": 2, "skills": ["electrical"],
        "parts": [{"number": "UV-254", "zh": "紫外灯管", "en": "UV tube"}], "steps_zh": ["检查灯管"],
        "steps_en": ["Check the tube"], "keywords": {"zh": {"紫外灯": 6}, "en": {"uv lamp": 6}}})
    return new


def _count(session_factory):
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(TaxonomyVersion))


def test_editors_read_the_shipped_taxonomy_others_may_not(client, login):
    r = client.get("/api/v1/taxonomy", headers=login("manager"))
    assert r.status_code == 200 and r.json()["version"] is None
    assert len(r.json()["data"]["categories"]) >= 15
    for role in ("agent", "customer", "engineer"):
        assert client.get("/api/v1/taxonomy", headers=login(role)).status_code == 403


def test_a_saved_category_changes_triage_and_a_dry_run_saves_nothing(client, login, session_factory):
    h = login("manager")
    data = client.get("/api/v1/taxonomy", headers=h).json()["data"]
    dry = client.put("/api/v1/taxonomy", headers=h, json={"data": _with_uv_lamp(data), "dry_run": True})
    assert dry.status_code == 200 and dry.json()["saved"] is False and _count(session_factory) == 0
    assert set(dry.json()["accuracy"]["before"]) == {"category", "tier", "priority"}
    assert client.post("/api/v1/triage", headers=h, json={"text": "紫外灯不亮了"}).json()["category"] != "uv_lamp"
    saved = client.put("/api/v1/taxonomy", headers=h, json={"data": _with_uv_lamp(data), "note": "new UV models"})
    assert saved.status_code == 200 and saved.json()["saved"] is True
    result = client.post("/api/v1/triage", headers=h, json={"text": "紫外灯不亮了"}).json()
    assert result["category"] == "uv_lamp" and result["likely_parts"][0]["number"] == "UV-254"
    ticket = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": "SN-IVF-001", "description": "UV lamp is off", "channel": "phone"}).json()
    assert ticket["category"] == "uv_lamp"
    versions = client.get("/api/v1/taxonomy/versions", headers=h).json()
    assert [v["note"] for v in versions] == ["new UV models"]


def test_invalid_taxonomies_are_refused_with_the_reason_and_nothing_saved(client, login, session_factory):
    h = login("manager")
    data = client.get("/api/v1/taxonomy", headers=h).json()["data"]
    bad_tier = copy.deepcopy(data)
    bad_tier["categories"][0]["default_tier"] = 7
    no_phrases = copy.deepcopy(data)
    no_phrases["categories"][1]["keywords"] = {"zh": {}, "en": {}}
    duplicate = copy.deepcopy(data)
    duplicate["categories"].append(copy.deepcopy(duplicate["categories"][0]))
    missing = copy.deepcopy(data)
    del missing["rules"]
    no_mainboard = copy.deepcopy(data)
    no_mainboard["categories"] = [c for c in data["categories"] if c["key"] != "electrical_mainboard"]
    for bad, words in ((bad_tier, "7"), (no_phrases, "no phrases"), (duplicate, "duplicate"), (missing, "rules"),
                       (no_mainboard, "instead): electrical_mainboard")):
        r = client.put("/api/v1/taxonomy", headers=h, json={"data": bad})
        assert r.status_code == 422 and words in r.json()["error"]["message_en"], r.text
    assert client.put("/api/v1/taxonomy", headers=login("agent"), json={"data": data}).status_code == 403
    assert _count(session_factory) == 0


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _page_login(client, username):
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": _csrf(page.text)})
    assert r.status_code in (200, 303)


def test_the_editor_page_previews_then_saves_a_category_and_restores(client, session_factory):
    _page_login(client, "manager")
    page = client.get("/admin/taxonomy")
    assert page.status_code == 200 and "door_seal" in page.text and "评测集准确率" in page.text
    form = client.get("/admin/taxonomy/door_seal")
    assert "门封" in form.text
    csrf = _csrf(form.text)
    zh = re.search(r'name="phrases_zh"[^>]*>([^<]*)</textarea>', form.text).group(1)
    fields = {"csrf": csrf, "zh": "门封与门体", "en": "Door and gasket", "default_tier": "2", "skills": "mechanical",
              "parts": "GSK-01 | 门封条 | Door gasket", "steps_zh": "检查门封", "steps_en": "Check the gasket",
              "phrases_zh": zh + "\n门缝漏气 = 4", "phrases_en": "door = 2", "action": "preview"}
    preview = client.post("/admin/taxonomy/door_seal", data=fields)
    assert preview.status_code == 200 and "尚未保存" in preview.text and _count(session_factory) == 0
    bad = client.post("/admin/taxonomy/door_seal", data={**fields, "phrases_en": "door = lots", "action": "save"})
    assert bad.status_code == 422 and "lots" in bad.text and _count(session_factory) == 0
    saved = client.post("/admin/taxonomy/door_seal", data={**fields, "action": "save"}, follow_redirects=False)
    assert saved.status_code == 303 and _count(session_factory) == 1
    assert "已保存为版本" in client.get("/admin/taxonomy").text
    restored = client.post("/admin/taxonomy/restore/0", data={"csrf": csrf}, follow_redirects=False)
    assert restored.status_code == 303 and _count(session_factory) == 2
    listing = client.get("/admin/taxonomy").text
    assert "已恢复版本 0" in listing


def test_agents_do_not_get_the_editor(client):
    _page_login(client, "agent")
    assert client.get("/admin/taxonomy").status_code == 403
