"""Tier-1 self-service and attachments: the JSON API, the portal form and the ticket page (no browser)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from incucare.adapters.db.tables import Ticket, TicketAttachment, TicketEvent
from incucare.adapters.kb.articles import load_articles
from incucare.services.attachments import MAX_BYTES
from tests.network import login_page

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(range(100))
EXE = b"MZ\x90\x00" + bytes(200)
TIER = {a.id: a.tier for a in load_articles()}


def _open(client, headers, text: str = "开门后CO2报警", serial: str = "SN-IVF-002") -> dict:
    r = client.post("/api/v1/tickets", headers=headers,
                    json={"device_serial": serial, "description": text, "channel": "portal"})
    assert r.status_code == 201, r.text
    return r.json()


def _count(session_factory, table, **where) -> int:
    with session_factory() as s:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return int(s.scalar(query) or 0)


def _events(client, headers, tid: int, kind: str) -> list[dict]:
    items = client.get(f"/api/v1/tickets/{tid}/timeline", headers=headers).json()["items"]
    return [e for e in items if e["kind"] == kind]


# ---------------------------------------------------------------- suggestions and deflection


def test_suggestions_per_role_and_language(client, login):
    customer, agent = login("customer"), login("agent")
    t = _open(client, customer, "CO2 浓度过冲,偏高报警")
    staff = client.get(f"/api/v1/tickets/{t['id']}/suggestions", headers=agent).json()["items"]
    assert staff[0]["id"] == "kb-003" and staff[0]["tier"] == 2  # the engineer's article is offered to staff
    mine = client.get(f"/api/v1/tickets/{t['id']}/suggestions", headers=customer).json()
    assert mine["total"] == len(mine["items"]) > 0
    assert all(TIER[i["id"]] == 1 for i in mine["items"]) and "kb-003" not in {i["id"] for i in mine["items"]}
    first = mine["items"][0]
    assert first["page_url"] == f"/kb/{first['id']}" and first["snippet"] and "#" not in first["snippet"]
    english = client.get(f"/api/v1/tickets/{t['id']}/suggestions", headers={**customer, "Accept-Language": "en"})
    assert english.json()["items"][0]["title"] == next(a.title_en for a in load_articles() if a.id == first["id"])
    assert client.get(f"/api/v1/tickets/{t['id']}/suggestions", headers=login("gmpuser")).status_code == 404
    assert client.get(f"/api/v1/tickets/{t['id']}/suggestions").status_code == 401


def test_deflection_before_submitting_shows_customers_tier1_articles_only(client, login):
    r = client.post("/api/v1/kb/deflect", headers=login("customer"), json={"text": "开门后CO2报警"})
    assert r.status_code == 200 and r.json()["items"][0]["id"] == "kb-001"
    staff = client.post("/api/v1/kb/deflect", headers=login("agent"), json={"text": "CO2 浓度过冲,偏高报警"})
    customer = client.post("/api/v1/kb/deflect", headers=login("customer"), json={"text": "CO2 浓度过冲,偏高报警"})
    assert staff.json()["items"][0]["id"] == "kb-003"
    assert all(TIER[i["id"]] == 1 for i in customer.json()["items"])
    assert client.post("/api/v1/kb/deflect", headers=login("customer"), json={"text": ""}).status_code == 422


# ---------------------------------------------------------------- did this fix it?


def test_fixed_resolves_at_tier1_as_first_contact_resolution(client, login):
    customer = login("customer")
    t = _open(client, customer)
    r = client.post(f"/api/v1/tickets/{t['id']}/self-service", headers=customer,
                    json={"fixed": True, "article_ids": ["kb-001"], "note": "延长了报警延时"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "resolved" and body["tier"] == 1 and body["self_service_resolved"] is True
    assert body["resolved_at"] is not None
    [event] = _events(client, customer, t["id"], "self_service")
    assert event["new_value"] == "fixed" and event["old_value"] == "kb-001" and "延长了报警延时" in event["note"]
    again = client.post(f"/api/v1/tickets/{t['id']}/self-service", headers=customer,
                        json={"fixed": True, "article_ids": ["kb-001"]})
    assert again.status_code == 200 and len(_events(client, customer, t["id"], "self_service")) == 1


def test_not_fixed_is_logged_the_ticket_goes_on_and_the_article_is_not_offered_again(client, login):
    customer = login("customer")
    t = _open(client, customer)
    tried = client.get(f"/api/v1/tickets/{t['id']}/suggestions", headers=customer).json()["items"][0]["id"]
    r = client.post(f"/api/v1/tickets/{t['id']}/self-service", headers=customer,
                    json={"fixed": False, "article_ids": [tried]})
    assert r.status_code == 200 and r.json()["status"] == "new" and r.json()["self_service_resolved"] is False
    [event] = _events(client, customer, t["id"], "self_service")
    assert event["new_value"] == "not_fixed" and event["old_value"] == tried
    after = client.get(f"/api/v1/tickets/{t['id']}/suggestions", headers=customer).json()["items"]
    assert tried not in {i["id"] for i in after}
    unknown = client.post(f"/api/v1/tickets/{t['id']}/self-service", headers=customer,
                          json={"fixed": False, "article_ids": ["kb-999"]})
    assert unknown.status_code == 422 and "kb-999" in unknown.json()["error"]["message"]


def test_fixed_beyond_tier1_is_a_conflict_and_changes_nothing(client, login):
    customer, agent = login("customer"), login("agent")
    t = _open(client, customer)
    moved = client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=agent, json={"to": "awaiting_dispatch"})
    assert moved.status_code == 200 and moved.json()["tier"] == 2
    r = client.post(f"/api/v1/tickets/{t['id']}/self-service", headers=customer,
                    json={"fixed": True, "article_ids": ["kb-001"]})
    assert r.status_code == 409 and "工程师" in r.json()["error"]["message"]
    assert client.get(f"/api/v1/tickets/{t['id']}", headers=customer).json()["status"] == "awaiting_dispatch"
    assert _events(client, customer, t["id"], "self_service") == []
    other = client.post(f"/api/v1/tickets/{t['id']}/self-service", headers=login("gmpuser"),
                        json={"fixed": True, "article_ids": []})
    assert other.status_code == 404


# ---------------------------------------------------------------- attachments over the API


def test_upload_list_and_download_with_scope(client, login):
    customer, agent, stranger = login("customer"), login("agent"), login("gmpuser")
    t = _open(client, customer)
    files = [("files", ("显示屏 E12.png", PNG, "image/png")), ("files", ("x.jpg", JPEG, "application/octet-stream"))]
    r = client.post(f"/api/v1/tickets/{t['id']}/attachments", headers=customer, files=files)
    assert r.status_code == 201, r.text
    png, jpeg = r.json()
    assert png["content_type"] == "image/png" and png["size"] == len(PNG) and png["filename"] == "显示屏 E12.png"
    assert jpeg["content_type"] == "image/jpeg"  # the bytes decide, not the claimed type
    listed = client.get(f"/api/v1/tickets/{t['id']}/attachments", headers=agent).json()
    assert [a["id"] for a in listed] == [png["id"], jpeg["id"]]
    got = client.get(png["url"], headers=agent)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png" and got.headers["x-content-type-options"] == "nosniff"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("inline;") and 'filename="____E12.png"' in disposition
    assert "filename*=UTF-8''%E6%98%BE%E7%A4%BA%E5%B1%8F%20E12.png" in disposition
    # another customer never learns the ticket or the file exists
    assert client.get(png["url"], headers=stranger).status_code == 404
    assert client.get(f"/api/v1/tickets/{t['id']}/attachments", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/tickets/{t['id']}/attachments", headers=stranger,
                       files=[("files", ("a.png", PNG, "image/png"))]).status_code == 404
    # an attachment asked for through another ticket is not found either
    other = _open(client, customer, "触摸屏没反应", serial="SN-IVF-001")
    assert client.get(f"/api/v1/tickets/{other['id']}/attachments/{png['id']}", headers=customer).status_code == 404
    # the same file again is stored once; the timeline names what was added
    again = client.post(f"/api/v1/tickets/{t['id']}/attachments", headers=agent,
                        files=[("files", ("copy.png", PNG, "image/png"))])
    assert again.status_code == 201 and again.json() == []
    [event] = _events(client, customer, t["id"], "attachment_added")
    assert event["new_value"] == f"{png['id']},{jpeg['id']}"


def test_wrong_type_is_refused_and_nothing_is_stored(client, login, session_factory):
    customer = login("customer")
    t = _open(client, customer)
    files = [("files", ("ok.png", PNG, "image/png")), ("files", ("photo.jpg", EXE, "image/jpeg"))]
    r = client.post(f"/api/v1/tickets/{t['id']}/attachments", headers=customer, files=files)
    assert r.status_code == 422
    assert "photo.jpg" in r.json()["error"]["message"] and "JPEG" in r.json()["error"]["message_en"]
    assert _count(session_factory, TicketAttachment) == 0
    assert _events(client, customer, t["id"], "attachment_added") == []
    empty = client.post(f"/api/v1/tickets/{t['id']}/attachments", headers=customer,
                        files=[("files", ("empty.png", b"", "image/png"))])
    assert empty.status_code == 422 and _count(session_factory, TicketAttachment) == 0
    assert client.post(f"/api/v1/tickets/{t['id']}/attachments", headers=customer).status_code == 422


def test_oversize_file_is_413_and_nothing_is_stored(client, login, session_factory):
    customer = login("customer")
    t = _open(client, customer)
    big = PNG + bytes(MAX_BYTES)
    files = [("files", ("small.png", JPEG, "image/jpeg")), ("files", ("huge.png", big, "image/png"))]
    r = client.post(f"/api/v1/tickets/{t['id']}/attachments", headers={**customer, "Accept-Language": "en"},
                    files=files)
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["code"] == "too_large" and "huge.png" in error["message"] and "10 MB" in error["message"]
    assert _count(session_factory, TicketAttachment) == 0


# ---------------------------------------------------------------- pages: the portal form


def test_portal_form_lists_the_customers_own_devices_with_model_and_site(client, world):
    login_page(client, "customer")
    r = client.get("/tickets/new")
    assert r.status_code == 200 and 'data-testid="portal-form"' in r.text
    assert 'enctype="multipart/form-data"' in r.text and 'accept="image/*"' in r.text
    assert "SN-IVF-001 · Heal Force HF100-TriGas · 生殖中心实验室" in r.text
    assert "SN-IVF-002" in r.text and "SN-GMP" not in r.text
    assert "/static/portal.js" in r.text
    assert 'value="SN-IVF-002" selected' in client.get("/tickets/new?serial=SN-IVF-002").text


def _browser_multipart(fields: list[tuple[str, str]], files: list[tuple[str, str, str, bytes]]) -> tuple[bytes, str]:
    """A form body the way a browser sends it: an unused file input is a part with ``filename=""``."""
    boundary = "----incucareBoundary7MA4YWxkTrZu0gW"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields]
    for name, filename, kind, data in files:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {kind}\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_portal_this_fixed_it_with_a_photo_opens_a_resolved_ticket(client, world, session_factory):
    csrf = login_page(client, "customer")
    body, content_type = _browser_multipart(
        [("csrf", csrf), ("device_serial", "SN-IVF-002"), ("description", "开门后CO2报警"), ("channel", "portal"),
         ("opened_articles", "kb-001"), ("fixed_article", "kb-001")],
        [("photos", "", "application/octet-stream", b""), ("photos", "屏幕.jpg", "image/jpeg", JPEG)])
    r = client.post("/tickets/new", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 200 and re.search(r"/tickets/\d+$", str(r.url)), r.text
    assert "已解决" in r.text and "一线首次解决" in r.text
    assert 'data-testid="attachment-thumb"' in r.text and "屏幕.jpg" in r.text
    with session_factory() as s:
        ticket = s.scalar(select(Ticket))
        assert ticket.status == "resolved" and ticket.tier == 1 and ticket.self_service_resolved
        assert ticket.channel == "portal"
        [attachment] = s.scalars(select(TicketAttachment)).all()
        assert attachment.channel == "portal" and attachment.data == JPEG
        kinds = [e.kind for e in s.scalars(select(TicketEvent).order_by(TicketEvent.id))]
        assert kinds.count("self_service") == 1 and "attachment_added" in kinds
    thumb = re.search(r'<img src="(/tickets/\d+/attachments/\d+)"', r.text).group(1)
    got = client.get(thumb)
    assert got.status_code == 200 and got.content == JPEG and got.headers["x-content-type-options"] == "nosniff"


def test_portal_still_need_help_logs_the_articles_the_customer_opened(client, world, session_factory):
    csrf = login_page(client, "customer")
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "", "serial_typed": "SN-IVF-001",
                                          "description": "开门后CO2报警", "opened_articles": ["kb-001", "kb-022"]})
    assert r.status_code == 200 and re.search(r"/tickets/\d+$", str(r.url))
    with session_factory() as s:
        ticket = s.scalar(select(Ticket))
        assert ticket.status == "new" and not ticket.self_service_resolved
        [event] = s.scalars(select(TicketEvent).where(TicketEvent.kind == "self_service")).all()
        assert event.new_value == "not_fixed" and event.old_value == "kb-001,kb-022"
    assert 'data-testid="ev-self-service"' in r.text and "未解决" in r.text
    # nothing opened: nothing to log
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "SN-IVF-002", "description": "水盘缺水湿度低"})
    assert r.status_code == 200
    assert _count(session_factory, TicketEvent, kind="self_service") == 1


def test_portal_errors_keep_the_input_and_store_nothing(client, world, session_factory):
    csrf = login_page(client, "customer")
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "", "description": "开门后CO2报警"})
    assert r.status_code == 422 and "请选择设备或输入序列号" in r.text and "开门后CO2报警" in r.text
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "SN-IVF-002", "description": "门封条脱落"},
                    files=[("photos", ("virus.jpg", EXE, "image/jpeg"))])
    assert r.status_code == 422 and "virus.jpg" in r.text and "门封条脱落" in r.text
    assert 'data-testid="photos-lost"' in r.text
    assert 'value="SN-IVF-002" selected' in r.text
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "SN-GMP-001", "description": "门封条脱落"})
    assert r.status_code == 422
    assert _count(session_factory, Ticket) == 0 and _count(session_factory, TicketAttachment) == 0


def test_portal_without_javascript_previews_the_articles_first(client, world, session_factory):
    csrf = login_page(client, "customer")
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "SN-IVF-002", "description": "开门后CO2报警",
                                          "action": "preview"})
    assert r.status_code == 200 and 'data-testid="deflection"' in r.text
    assert 'name="fixed_article" value="kb-001"' in r.text and "开门后CO2报警" in r.text
    assert _count(session_factory, Ticket) == 0


def test_suggest_fragment_and_article_page(client, world):
    login_page(client, "customer")
    r = client.get("/kb/suggest", params={"q": "CO2 浓度过冲,偏高报警"})
    assert r.status_code == 200 and "<html" not in r.text and 'data-testid="deflection"' in r.text
    ids = re.findall(r'name="fixed_article" value="(kb-\d+)"', r.text)
    assert ids and all(TIER[i] == 1 for i in ids)
    assert 'data-testid="deflection-none"' in client.get("/kb/suggest", params={"q": "的了吗"}).text
    page = client.get("/kb/kb-001")
    assert page.status_code == 200 and "<h3>症状</h3>" in page.text and 'href="/kb/kb-004"' in page.text
    english = client.get("/kb/kb-001?lang=en")
    assert "CO2 alarm after opening the door" in english.text and "<h3>Symptoms</h3>" in english.text
    assert 'data-testid="kb-engineer-only"' in client.get("/kb/kb-003").text
    assert client.get("/kb/kb-999").status_code == 404


# ---------------------------------------------------------------- pages: the ticket page


def test_agent_sees_suggested_articles_triage_line_and_the_escalation_button(client, world, login):
    t = _open(client, login("customer"), "CO2 浓度过冲,偏高报警")
    csrf = login_page(client, "agent")
    r = client.get(f"/tickets/{t['id']}")
    assert r.status_code == 200 and 'data-testid="kb-panel"' in r.text and 'href="/kb/kb-003"' in r.text
    assert re.search(r"系统判定:建议 二级 · 区域工程师上门 · 置信度 \d{1,3}%", r.text)
    assert 'data-testid="triage-evidence"' in r.text
    assert 'name="to" value="awaiting_dispatch"' in r.text
    moved = client.post(f"/tickets/{t['id']}/move", data={"csrf": csrf, "to": "awaiting_dispatch",
                                                          "reason": "系统判定建议升级至2级 / triage suggests tier 2"})
    assert moved.status_code == 200 and 'data-testid="triage-escalate"' not in moved.text
    assert client.get(f"/api/v1/tickets/{t['id']}", headers=login("agent")).json()["tier"] == 2


def test_customer_answers_did_this_fix_it_on_the_ticket_page(client, world, login):
    t = _open(client, login("customer"))
    csrf = login_page(client, "customer")
    r = client.get(f"/tickets/{t['id']}")
    assert 'data-testid="self-help"' in r.text and 'data-testid="kb-panel"' not in r.text
    assert 'data-testid="triage-evidence"' not in r.text
    shown = re.findall(r'name="article_ids" value="(kb-\d+)"', r.text)
    assert shown and all(TIER[i] == 1 for i in shown)
    no = client.post(f"/tickets/{t['id']}/self-service", data={"csrf": csrf, "fixed": "0", "article_ids": shown},
                     follow_redirects=False)
    assert no.status_code == 303 and no.headers["location"] == f"/tickets/{t['id']}"
    page = client.get(no.headers["location"]).text
    assert "客服将继续处理" in page and not set(shown) & set(re.findall(r'name="article_ids" value="(kb-\d+)"', page))
    offered = re.findall(r'name="fixed_article" value="(kb-\d+)"', page)
    yes = client.post(f"/tickets/{t['id']}/self-service", data={"csrf": csrf, "fixed_article": offered[0]})
    assert yes.status_code == 200 and 'data-testid="ticket-status">已解决' in yes.text
    assert 'data-testid="self-help"' not in yes.text
    forged = client.post(f"/tickets/{t['id']}/self-service", data={"csrf": "x", "fixed": "0"})
    assert "页面已过期" in forged.text


def test_photos_on_the_ticket_page_later_with_scope(client, world, login, session_factory):
    t = _open(client, login("customer"))
    csrf = login_page(client, "customer")
    r = client.post(f"/tickets/{t['id']}/attachments", data={"csrf": csrf},
                    files=[("photos", ("门封.png", PNG, "image/png"))])
    assert r.status_code == 200 and "附件已上传" in r.text and "门封.png" in r.text
    bad = client.post(f"/tickets/{t['id']}/attachments", data={"csrf": csrf},
                      files=[("photos", ("x.png", EXE, "image/png"))])
    assert "只接受照片" in bad.text and _count(session_factory, TicketAttachment) == 1
    none = client.post(f"/tickets/{t['id']}/attachments", data={"csrf": csrf})
    assert "请选择至少一张照片" in none.text
    aid = re.search(r'/attachments/(\d+)"', r.text).group(1)
    client.cookies.clear()  # drop the session (a logout post needs the page's CSRF token)
    login_page(client, "gmpuser")
    assert client.get(f"/tickets/{t['id']}/attachments/{aid}").status_code == 404
    assert client.post(f"/tickets/{t['id']}/attachments", data={"csrf": "x"}).status_code in (200, 404)


@pytest.mark.parametrize("kind", ["report_joined", "customer_message"])
def test_timeline_shows_intake_events_with_their_channel(client, world, login, kind):
    customer = login("customer")
    t = _open(client, customer)
    if kind == "report_joined":
        joined = client.post("/api/v1/tickets", headers=login("agent"),
                             json={"device_serial": "SN-IVF-002", "description": "开门后CO2报警,又响了",
                                   "channel": "phone"})
        assert joined.json()["joined"] is True
    else:
        with client.app.state.session_factory() as s:  # a message as the mail-in channel stores it
            s.add(TicketEvent(ticket_id=t["id"], at=client.app.state.clock(), actor_id=None, actor_name="mail-in",
                        kind="customer_message", old_value=None, new_value="email", note="还是报警"))
            s.commit()
    login_page(client, "agent")
    page = client.get(f"/tickets/{t['id']}").text
    testid = "ev-report-joined" if kind == "report_joined" else "ev-customer-message"
    assert f'data-testid="{testid}">{"电话" if kind == "report_joined" else "邮件"}<' in page
    assert 'data-testid="ev-triaged"' in page
