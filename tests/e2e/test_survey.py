"""The satisfaction survey in a real browser at phone size: the link from the e-mail, stars, a comment,
one answer; then the service manager sees the result on the ticket page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import Notification
from incucare.adapters.db.tables_care import Survey
from incucare.config import Settings
from incucare.domain.model import Channel, Role, TicketStatus
from incucare.services import tickets
from incucare.services.context import Actor
from incucare.web.app import create_app
from tests.e2e.browser import sign_in
from tests.e2e.conftest import LiveServer, _free_port
from tests.world import World, build_world

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('survey') / 'e2e.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    world = build_world(factory(), datetime.now(UTC))
    app = create_app(Settings(database_url=url, secret_key="e2e-secret-key-123456", sweep_interval_s=0),
                     engine=engine)
    live = LiveServer(app, _free_port())
    live.start()
    yield live.url, world, factory
    live.stop()
    engine.dispose()


def _closed_ticket_with_link(factory: sessionmaker[Session], world: World) -> tuple[int, str]:
    agent = Actor(user_id=world.users["agent"], name="Agent", role=Role.AGENT)
    now = datetime.now(UTC)
    with factory() as s:
        opened = tickets.open_ticket(s, agent, now=now, device_serial="SN-GMP-001", description="门封漏气,CO2 恢复慢",
                                     channel=Channel.PHONE, reporter_email="lab@gmp.example")
        for to in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            tickets.move_ticket(s, agent, opened.ticket.id, now=now, to=to)
        s.commit()
        body = s.scalar(select(Notification.body).where(Notification.template == "survey_invite",
                                                        Notification.channel == "email"))
    match = re.search(r"(/survey/[A-Za-z0-9_-]+)", body or "")
    assert match, body
    return opened.ticket.id, match.group(1)


def test_a_customer_rates_the_service_on_a_phone(browser, server) -> None:  # type: ignore[no-untyped-def]
    base, world, factory = server
    ticket_id, path = _closed_ticket_with_link(factory, world)
    context = browser.new_context(locale="zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(base + path)
        assert page.get_by_role("heading", name="服务满意度评价").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
        page.get_by_test_id("submit").click()  # nothing chosen: told what is missing, nothing saved
        assert "请为每一项打 1 到 5 星" in page.get_by_test_id("error").inner_text()
        star = page.get_by_test_id("speed-5")
        box = star.bounding_box()
        assert box is not None and box["width"] >= 40 and box["height"] >= 40  # a thumb can hit it
        star.tap()
        page.get_by_test_id("competence-4").tap()
        page.get_by_test_id("communication-5").tap()
        page.get_by_test_id("comment").fill("工程师当天到场,讲解清楚")
        page.get_by_test_id("submit").tap()
        page.wait_for_selector("[data-testid=survey-thanks]")
        assert page.get_by_test_id("score-competence").inner_text() == "★★★★☆"
        page.goto(base + path + "?lang=en")
        assert "Thank you" in page.get_by_test_id("survey-thanks").inner_text()
    finally:
        context.close()
    with factory() as s:
        survey = s.scalar(select(Survey).where(Survey.ticket_id == ticket_id))
        assert survey is not None
        assert (survey.speed, survey.competence, survey.communication) == (5, 4, 5)
        assert survey.comment == "工程师当天到场,讲解清楚"

    staff = browser.new_context(locale="zh-CN")
    page = staff.new_page()
    try:
        sign_in(page, base, "manager")
        page.wait_for_url(re.compile(r"/(devices|tickets)"))
        page.goto(f"{base}/tickets/{ticket_id}")
        result = page.get_by_test_id("survey-result").inner_text()
        assert "5/5" in result and "4/5" in result
        assert page.get_by_test_id("survey-average").inner_text() == "4.7"
    finally:
        staff.close()
