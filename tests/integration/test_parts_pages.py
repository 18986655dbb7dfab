"""The stock pages on SQLite and PostgreSQL: warehouse stock with the short lines highlighted, one part across
warehouses, transfers in transit with a "received" button, zh by default and English on request."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from incucare.adapters.db.tables import StockLevel
from incucare.domain.model import Role
from incucare.services import parts
from incucare.services.context import Actor
from tests.integration.test_parts import Stock, build_stock
from tests.world import PASSWORD


@pytest.fixture
def stock(session_factory, world, clock) -> Stock:
    return build_stock(session_factory, world, clock.now)


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', text)
    assert match is not None
    return match.group(1)


def _login(client, username: str) -> str:
    client.cookies.clear()  # drop the session (a logout post needs the page's CSRF token)
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": _csrf(page.text)})
    assert r.status_code == 200, r.text
    return _csrf(r.text)


def _tag(page: str, testid: str) -> str:
    match = re.search(rf'<[^>]*data-testid="{re.escape(testid)}"[^>]*>', page)
    assert match is not None, f"no element with data-testid={testid}"
    return match.group(0)


def _text(page: str, testid: str, end: str) -> str:
    start = page.index(f'data-testid="{testid}"')
    return html.unescape(re.sub(r"<[^>]+>", " ", page[start:page.index(end, start)]))


def test_stock_page_highlights_low_lines_in_both_languages(client, stock):
    _login(client, "dispatcher")
    r = client.get("/parts", params={"warehouse": stock.wh["gz"]})
    assert r.status_code == 200
    page = r.text
    assert "备件库存" in page and 'data-nav="parts"' in page
    assert "stock-low" in _tag(page, "stock-PN-CO2-IR-01")
    assert "低于最低库存" in _text(page, "stock-PN-CO2-IR-01", "</tr>")
    assert "建议补货 6 件" in _text(page, "low-stock", "</section>")
    en = client.get("/parts", params={"warehouse": stock.wh["gz"], "lang": "en"}).text
    assert "Below minimum" in _text(en, "stock-PN-CO2-IR-01", "</tr>") and "order 6" in en
    hq = client.get("/parts").text  # HQ staff land on the HQ warehouse
    assert "HQ-MAIN" in _text(hq, "warehouse-stock", "</h2>") and "stock-low" not in _tag(hq, "stock-PN-MB-V3")
    only_low = client.get("/parts", params={"warehouse": stock.wh["gz"], "low": "1", "q": "密封"}).text
    assert 'data-testid="stock-table"' not in only_low


def test_part_page_shows_stock_across_warehouses(client, stock):
    _login(client, "dispatcher")
    page = client.get(f"/parts/{stock.parts['co2']}").text
    codes = re.findall(r'data-testid="wh-([A-Z0-9-]+)"', page)
    assert codes == ["HQ-MAIN", "SP-GZ", "SP-WH", "VAN-ENG", "VAN-ENG2"]
    assert "Heal Force HF90" in _text(page, "part-facts", "</dl>")
    assert "18" in _text(page, "part-totals", "</section>")  # 10 + 2 + 4 + 1 + 1 on hand
    assert client.get("/parts/999999").status_code == 404


def test_received_button_books_the_transfer_once(client, stock, world, session_factory, clock):
    dispatcher = Actor(user_id=world.users["dispatcher"], name="dispatcher", role=Role.DISPATCHER)
    with session_factory() as s:
        transfer = parts.ship_transfer(s, dispatcher, part_id=stock.parts["co2"], quantity=3,
                                          from_warehouse_id=stock.wh["hq"], to_warehouse_id=stock.wh["van"],
                                          now=clock.now)
        s.commit()
        number, transfer_id = transfer.number, transfer.id
    csrf = _login(client, "engineer")
    page = client.get("/parts").text
    assert "VAN-ENG" in _text(page, "warehouse-stock", "</h2>")  # an engineer lands on their van
    assert number in _text(page, "in-transit", "</section>")
    clock.advance(days=3)
    assert "已超期" in _text(client.get("/parts").text, f"transfer-{number}", "</tr>")
    r = client.post(f"/parts/transfers/{transfer_id}/receive", data={"csrf": "forged", "back": "/parts"})
    assert "页面已过期" in r.text
    r = client.post(f"/parts/transfers/{transfer_id}/receive", data={"csrf": csrf, "back": "https://evil.example/"})
    assert r.status_code == 200 and str(r.url).endswith("/parts")
    assert f"调拨单 {number} 已签收" in r.text
    r = client.post(f"/parts/transfers/{transfer_id}/receive", data={"csrf": csrf, "back": "/parts"})
    assert "此前已签收" in r.text
    with session_factory() as s:
        level = s.scalar(select(StockLevel).where(StockLevel.warehouse_id == stock.wh["van"],
                                                  StockLevel.part_id == stock.parts["co2"]))
        assert level.on_hand == 4


def test_stock_pages_are_closed_to_customers_and_scoped_for_partners(client, stock):
    _login(client, "customer")
    assert 'data-nav="parts"' not in client.get("/tickets").text
    assert client.get("/parts").status_code == 403
    assert client.get(f"/parts/{stock.parts['co2']}").status_code == 403
    _login(client, "partner")
    page = client.get("/parts").text
    joined = _text(page, "warehouse-select", "</select>")
    assert "SP-GZ" in joined and "VAN-ENG" in joined and "HQ-MAIN" not in joined and "SP-WH" not in joined
    assert client.get("/parts", params={"warehouse": stock.wh["hq"]}).status_code == 200  # falls back, no leak
    assert "HQ-MAIN" not in client.get("/parts", params={"warehouse": stock.wh["hq"]}).text
