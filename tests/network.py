"""Field engineers for dispatch and field-work tests: a user, a profile, a van and its stock in one call."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from incucare.adapters.db.tables import EngineerProfile, Part, ServicePoint, StockLevel, User, Warehouse
from incucare.services.auth import hash_password
from tests.world import PASSWORD


def add_field_engineer(session: Session, name: str, *, base: ServicePoint, latitude: float, longitude: float,
                       skills: Sequence[str], region_id: int, now: datetime,
                       tools: Sequence[str] = ("co2_analyser", "calibration_gas"),
                       van: Mapping[Part, int] | None = None) -> tuple[int, int]:
    """An on-call engineer at ``latitude, longitude`` with a van holding ``van``; returns (user id, van id)."""
    user = User(username=name, password_hash=hash_password(PASSWORD), full_name=f"{name.title()} 工程师",
                role="engineer", region_id=region_id, service_point_id=base.id, skills=list(skills), created_at=now)
    session.add(user)
    session.flush()
    session.add(EngineerProfile(user_id=user.id, home_service_point_id=base.id, certifications=[], tools=list(tools),
                                on_call=True, latitude=latitude, longitude=longitude))
    wagon = Warehouse(code=f"VAN-{name}", kind="van", name=f"{name} 车载", engineer_id=user.id)
    session.add(wagon)
    session.flush()
    for part, quantity in (van or {}).items():
        if quantity:
            session.add(StockLevel(warehouse_id=wagon.id, part_id=part.id, on_hand=quantity))
    return user.id, wagon.id


def login_as(client: TestClient, username: str) -> dict[str, str]:
    """Bearer headers for a user the test created (the world's users have the ``login`` fixture)."""
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def csrf_of(html: str) -> str:
    """The CSRF token a rendered page carries (hidden form field or meta tag)."""
    match = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', html)
    assert match is not None, "the page carries no CSRF token"
    return match.group(1)


def login_landing(client: TestClient, username: str) -> str:
    """Log in through the login page as a fresh session; returns the landing page's HTML."""
    client.cookies.clear()  # a logout post would need the page's token; a fresh session needs none
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert r.status_code == 200, r.text
    return r.text


def login_page(client: TestClient, username: str) -> str:
    """Log in through the login page as a fresh session; returns the landing page's CSRF token."""
    return csrf_of(login_landing(client, username))
