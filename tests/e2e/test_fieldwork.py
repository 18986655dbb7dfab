"""Field work in a real browser at phone size: the dispatcher picks the first candidate, the engineer accepts,
travels, checks in with the phone's position, writes the report with a part, a calibration and a drawn
signature, and sees the job done."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import (
    Calibration,
    EngineerProfile,
    Part,
    ServicePoint,
    ServiceVisit,
    Site,
    StockLevel,
    Ticket,
    User,
    Warehouse,
    WorkReport,
)
from incucare.config import Settings
from incucare.domain.model import Channel, Role, TicketStatus
from incucare.services.auth import hash_password
from incucare.services.context import Actor
from incucare.services.tickets import move_ticket, open_ticket
from incucare.web.app import create_app
from tests.e2e.browser import sign_in
from tests.e2e.conftest import LiveServer, _free_port
from tests.world import PASSWORD, build_world

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def field_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A server of its own with two Wuhan engineers (Wang near the site with the sensor in his van) and a
    tier-2 CO2 sensor ticket waiting for dispatch."""
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-field') / 'field.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    world = build_world(factory(), now)
    with factory() as s:
        site = s.get(Site, world.sites["ivf"])
        point = ServicePoint(code="WH", name="武汉服务站", city="武汉市", region_id=world.regions["central"],
                             latitude=site.latitude + 0.05, longitude=site.longitude)
        s.add(point)
        sensor = Part(number="IR-CO2-01", name_zh="红外CO2传感器", name_en="IR CO2 sensor", compatible_models=[])
        gas = Part(number="CAL-GAS-5", name_zh="5% CO2标准气", name_en="5 % CO2 calibration gas",
                   compatible_models=[])
        s.add_all([sensor, gas])
        s.flush()
        ids: dict[str, int] = {}
        for name, offset, sensors in (("wang", 0.01, 1), ("li", 0.1, 0)):
            user = User(username=name, password_hash=hash_password(PASSWORD), full_name=f"{name.title()} 工程师",
                        role="engineer", region_id=world.regions["central"], service_point_id=point.id,
                        skills=["co2", "calibration"], created_at=now)
            s.add(user)
            s.flush()
            ids[name] = user.id
            s.add(EngineerProfile(user_id=user.id, home_service_point_id=point.id, tools=["co2_analyser",
                                  "calibration_gas"], certifications=[], on_call=True,
                                  latitude=site.latitude + offset, longitude=site.longitude))
            van = Warehouse(code=f"VAN-{name}", kind="van", name=f"{name} 车载", engineer_id=user.id)
            s.add(van)
            s.flush()
            ids[f"van_{name}"] = van.id
            s.add(StockLevel(warehouse_id=van.id, part_id=gas.id, on_hand=2))
            if sensors:
                s.add(StockLevel(warehouse_id=van.id, part_id=sensor.id, on_hand=sensors))
        ids["sensor"] = sensor.id
        dispatcher = s.get(User, world.users["dispatcher"])
        actor = Actor(user_id=dispatcher.id, name=dispatcher.full_name, role=Role.DISPATCHER)
        ticket = open_ticket(s, actor, now=now, device_serial="SN-IVF-001", channel=Channel.PHONE,
                             description="CO2 传感器读数不准,外接检测仪测出来差 1.5%,自己校准失败",
                             reporter_name="王老师", reporter_phone="13800000000").ticket
        for to in (TicketStatus.ACKNOWLEDGED, TicketStatus.AWAITING_DISPATCH):
            move_ticket(s, actor, ticket.id, now=now, to=to)
        ids["ticket"] = ticket.id
        s.commit()
        coords = (site.latitude, site.longitude)
    app = create_app(Settings(database_url=url, secret_key="e2e-field-secret-123456", sweep_interval_s=0),
                     engine=engine)
    server = LiveServer(app, _free_port())
    server.start()
    yield {"url": server.url, "ids": ids, "site": coords, "factory": factory}
    server.stop()
    engine.dispose()


def _login(page, base: str, username: str) -> None:
    sign_in(page, base, username)
    page.wait_for_url(re.compile(r"/tickets$"))


def test_dispatch_then_the_engineer_works_the_job_on_a_phone(browser, field_live):
    base, ids = field_live["url"], field_live["ids"]
    lat, lon = field_live["site"]
    # the dispatcher sees the ranked candidates on the ticket and offers the job to the first one
    office = browser.new_context(locale="zh-CN")
    desk = office.new_page()
    _login(desk, base, "dispatcher")
    desk.goto(f"{base}/tickets/{ids['ticket']}")
    panel = desk.get_by_test_id("candidates-panel")
    first = panel.get_by_test_id("candidate").first
    assert first.get_attribute("data-engineer") == str(ids["wang"])
    assert "车载库存" in first.inner_text()
    first.get_by_role("button", name="派工").click()
    desk.wait_for_load_state()
    assert "Wang 工程师" in desk.get_by_role("status").first.inner_text()
    assert desk.get_by_test_id("ticket-status").inner_text() == "已派工"
    office.close()

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", geolocation={"latitude": lat + 0.0005,
                                                                             "longitude": lon},
                                permissions=["geolocation"], has_touch=True)
    page = phone.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    _login(page, base, "wang")
    page.get_by_role("link", name="我的任务").click()
    card = page.get_by_test_id("job-card").first
    assert "武汉某生殖医学中心" in card.inner_text() and "SN-IVF-001" in card.inner_text()
    assert "湖北省武汉市" in card.get_by_test_id("job-address").inner_text()
    assert card.get_by_test_id("job-sla").is_visible()
    card.get_by_test_id("accept").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("job-status").inner_text() == "工程师已接单"
    page.get_by_test_id("start-travel").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("job-status").inner_text() == "工程师在途"
    page.get_by_test_id("check-in").click()
    page.get_by_test_id("write-report").wait_for()
    assert page.get_by_test_id("job-status").inner_text() == "工程师已到场"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing wider than the phone

    page.get_by_test_id("write-report").click()
    page.get_by_test_id("diagnosis").fill("红外 CO2 传感器漂移,读数偏高 1.4%")
    page.get_by_test_id("actions").fill("更换红外 CO2 传感器,用 5% 标准气校准")
    page.get_by_test_id("qty-IR-CO2-01").fill("1")
    row = page.get_by_test_id("cal-row-0")
    row.get_by_label("设定值").fill("5.0")
    row.get_by_label("校准前").fill("6.4")
    row.get_by_label("校准后").fill("5.1")
    row.get_by_label("标准器编号").fill("GM70-0042")
    row.get_by_label("标准器证书日期").fill(datetime.now(UTC).date().replace(day=1).isoformat())
    page.get_by_test_id("outcome-fixed").check()
    page.get_by_test_id("signer").fill("王老师")
    canvas = page.get_by_test_id("signature-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(box["x"] + 20 + step * 25, box["y"] + box["height"] * (0.6 - 0.3 * (step % 2)), steps=3)
    page.mouse.up()
    assert page.get_by_test_id("signature-value").input_value().startswith("data:image/png;base64,")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_test_id("submit-report").click()
    page.wait_for_url(re.compile(r"/my/jobs"))
    assert "已解决" in page.get_by_role("status").first.inner_text()
    done = page.get_by_test_id("done-card")
    assert done.get_by_test_id("done-outcome").inner_text() == "已修复"
    assert page.get_by_test_id("job-card").count() == 0
    phone.close()

    with field_live["factory"]() as s:
        ticket = s.get(Ticket, ids["ticket"])
        assert ticket.status == "resolved" and ticket.onsite_at is not None
        assert s.get(StockLevel, (ids["van_wang"], ids["sensor"])).on_hand == 0
        report = s.scalar(select(WorkReport).where(WorkReport.ticket_id == ticket.id))
        assert report.signature_png.startswith(b"\x89PNG") and report.signer_name == "王老师"
        visit = s.get(ServiceVisit, report.visit_id)
        assert visit.checkin_latitude == pytest.approx(lat + 0.0005, abs=1e-5)
        calibration = s.scalar(select(Calibration).where(Calibration.visit_id == visit.id))
        assert (calibration.parameter, calibration.as_left, calibration.reference_instrument) == ("co2", 5.1,
                                                                                                  "GM70-0042")
