"""Monthly service reports on SQLite and PostgreSQL: the XLSX is opened with openpyxl and its figures checked
against hand-computed ones, the PDF is a real PDF built from the same assembled data, bad requests get a
precise 422, and each role gets only its own slice (a partner its region, a customer its key account)."""

from __future__ import annotations

from io import BytesIO

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from incucare.adapters.db.tables import AuditRecord
from incucare.adapters.reports.monthly_pdf import render_pdf
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.domain.model import Role
from incucare.services.context import Actor
from incucare.services.monthly_report import as_dict, build_monthly_report
from incucare.web.i18n import translator
from tests.integration.test_dashboards import Month, build_month, login_page

URL = "/api/v1/reports/monthly"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def month(session_factory, world, clock) -> Month:
    return build_month(session_factory, world, clock.now)


def _rows(ws) -> list[tuple]:
    return [tuple(c.value for c in row) for row in ws.iter_rows()]


def _row(ws, first: str) -> tuple:
    found = [r for r in _rows(ws) if r and r[0] == first]
    assert found, f"no row starting with {first!r} in {ws.title}"
    return found[0]


def test_region_xlsx_holds_the_months_figures(client, login, month):
    r = client.get(URL, headers=login("manager"), params={"month": "2026-11", "scope": "region:central",
                                                          "format": "xlsx"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XLSX
    assert 'filename="incucare-monthly-2026-11-region-central.xlsx"' in r.headers["content-disposition"]
    wb = load_workbook(BytesIO(r.content))
    summary = wb["概要"]
    assert summary["B2"].value == "华中区" and summary["B5"].value == 2  # t1 and t2 were reported in central
    assert _row(summary, "首响")[1:4] == (1, 1, 0.5)  # met, breached, rate
    assert _row(summary, "闭环")[1:4] == (1, 1, 0.5)
    assert _row(summary, "上门")[1:4] == (0, 0, None)  # no on-site visit this month: no figure, not 0 %
    assert _row(summary, "首响 SLA 达成率")[1] == 0.5  # the KPI table agrees with the compliance table
    assert summary.cell(row=[r[0] for r in _rows(summary)].index("首响") + 1, column=4).font.color.rgb.endswith(
        "C0392B")  # 50 % is below the 90 % target: red
    assert _row(summary, "已回复")[1] == 1 and _row(summary, "综合")[1] == pytest.approx(14 / 3)
    tickets = _rows(wb["工单"])
    assert [t[0] for t in tickets[1:]] == [month.numbers["t1"], month.numbers["t2"]]
    t1 = dict(zip(tickets[0], tickets[1], strict=True))
    assert (t1["首响"], t1["闭环"], t1["状态"]) == ("已达成", "已达成", "已闭环")
    assert t1["客户"] == "武汉某生殖医学中心"
    t2 = dict(zip(tickets[0], tickets[2], strict=True))
    assert t2["首响"] == "已超时" and t2["上门"] == "不适用"
    assert _rows(wb["备件"])[1] == ("PN-CO2-IR-01", "红外 CO2 传感器", 2, 1)
    assert _rows(wb["留言"])[1] == (month.numbers["t1"], "工程师很专业")


def test_south_xlsx_in_english(client, login, month):
    r = client.get(URL, headers=login("manager"), params={"month": "2026-11", "scope": "region:south",
                                                          "format": "xlsx", "lang": "en"})
    assert r.status_code == 200, r.text
    wb = load_workbook(BytesIO(r.content))
    summary = wb["Summary"]
    assert summary["B2"].value == "South" and summary["B5"].value == 1
    assert _row(summary, "First response")[1:4] == (1, 0, 1.0)
    assert _row(summary, "Resolution")[1:4] == (0, 1, 0.0)
    assert [t[0] for t in _rows(wb["Tickets"])[1:]] == [month.numbers["t3"]]
    assert len(_rows(wb["Parts"])) == 1  # no part was fitted in the south


def test_pdf_is_built_from_the_assembled_figures(client, login, month, session_factory, world, clock):
    r = client.get(URL, headers=login("manager"), params={"month": "2026-11", "scope": "customer:C-IVF"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
    assert b"STSong-Light" in r.content  # Chinese set in the built-in CID font
    manager = Actor(user_id=world.users["manager"], name="manager", role=Role.SERVICE_MANAGER)
    with session_factory() as s:
        report = build_monthly_report(s, manager, month="2026-11", scope="customer:C-IVF", now=clock.now)
        data = as_dict(report)
        assert data["label"] == "武汉某生殖医学中心" and data["tickets"] == 2
        assert data["compliance"]["first_response"] == {"met": 1, "breached": 1, "rate": 0.5}
        assert data["parts"] == [{"part_number": "PN-CO2-IR-01", "quantity": 2}]
        assert data["csat"]["answered"] == 1
        pdf = render_pdf(report, lang="en", t=translator("en"))
        assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
        brand = as_dict(build_monthly_report(s, manager, month="2026-11", scope="brand:heal force", now=clock.now))
        assert brand["tickets"] == 3 and brand["label"] == "Heal Force"


def test_dashboard_link_downloads_the_report_with_the_session(client, month):
    login_page(client, "manager")
    r = client.get("/dashboards/report", params={"month": "2026-11", "scope": "region:south", "format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"month": "2026/11", "scope": "region:central"}, "month", "YYYY-MM"),
    ({"month": "2026-13", "scope": "region:central"}, "month", "does not exist"),
    ({"month": "2027-01", "scope": "region:central"}, "month", "has not started"),
    ({"month": "2026-11", "scope": "central"}, "scope", "region:<code>"),
    ({"month": "2026-11", "scope": "planet:mars"}, "scope", "unknown scope kind 'planet'"),
    ({"month": "2026-11", "scope": "region:nowhere"}, "scope", "no region 'nowhere'"),
    ({"month": "2026-11", "scope": "brand:Acme"}, "scope", "no device model of brand 'Acme'"),
    ({"month": "2026-11", "scope": "customer:C-GMP"}, "scope", "not a key account"),
    ({"month": "2026-11", "scope": "region:central", "format": "docx"}, "format", "pdf or xlsx"),
    ({"scope": "region:central"}, "month", "month"),
])
def test_bad_requests_get_a_precise_422_and_change_nothing(client, login, month, session_factory, params, field,
                                                            words):
    with session_factory() as s:
        before = s.scalar(select(func.count(AuditRecord.id)))
    r = client.get(URL, headers=login("manager"), params={**params, "lang": "en"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert words in error["message_en"]
    assert any(d["field"] == field for d in error["details"]), error
    with session_factory() as s:
        assert s.scalar(select(func.count(AuditRecord.id))) == before


def test_partner_gets_only_its_region(client, login, month):
    h = login("partner")  # south
    assert client.get(URL, headers=h, params={"month": "2026-11", "scope": "region:south"}).status_code == 200
    other = client.get(URL, headers=h, params={"month": "2026-11", "scope": "region:central", "lang": "en"})
    assert other.status_code == 422 and "no region 'central'" in other.json()["error"]["message_en"]  # as if absent
    r = client.get(URL, headers=h, params={"month": "2026-11", "scope": "brand:Heal Force", "format": "xlsx"})
    assert r.status_code == 200
    wb = load_workbook(BytesIO(r.content))
    assert wb["概要"]["B2"].value == "Heal Force · 华南区" and wb["概要"]["B5"].value == 1
    assert [t[0] for t in _rows(wb["工单"])[1:]] == [month.numbers["t3"]]
    vip = client.get(URL, headers=h, params={"month": "2026-11", "scope": "customer:C-IVF"})
    assert vip.status_code == 422  # a Wuhan customer is outside the south partner's view


def test_customer_gets_only_its_own_key_account_report(client, login, month, session_factory, world, clock):
    h = login("customer")  # the VIP IVF centre
    r = client.get(URL, headers=h, params={"month": "2026-11", "scope": "customer:C-IVF", "format": "xlsx"})
    assert r.status_code == 200, r.text
    assert load_workbook(BytesIO(r.content))["概要"]["B5"].value == 2
    assert client.get(URL, headers=h, params={"month": "2026-11", "scope": "region:central"}).status_code == 403
    assert client.get(URL, headers=h, params={"month": "2026-11", "scope": "customer:C-GMP"}).status_code == 422
    gmp = client.get(URL, headers=login("gmpuser"), params={"month": "2026-11", "scope": "customer:C-GMP",
                                                            "lang": "en"})
    assert gmp.status_code == 422 and "not a key account" in gmp.json()["error"]["message_en"]
    assert client.get(URL, params={"month": "2026-11", "scope": "region:central"}).status_code == 401
    customer = Actor(user_id=world.users["customer"], name="c", role=Role.CUSTOMER, customer_id=world.customers["ivf"])
    with session_factory() as s:
        with pytest.raises(PermissionDenied):
            build_monthly_report(s, customer, month="2026-11", scope="brand:Heal Force", now=clock.now)
        with pytest.raises(ValidationFailed):
            build_monthly_report(s, customer, month="2026-11", scope="customer:C-GMP", now=clock.now)
