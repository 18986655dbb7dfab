"""API fixtures: the real app on the test database, with an injectable clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from incucare.config import Settings
from incucare.web.app import create_app
from tests.conftest import FakeClock
from tests.servers import smtp  # noqa: F401  (a fixture shared by the notification and SLA tests)
from tests.world import PASSWORD, World, build_world


@pytest.fixture
def world(session_factory: sessionmaker[Session], clock: FakeClock) -> World:
    with session_factory() as s:
        return build_world(s, clock.now)


@pytest.fixture
def client(engine: Engine, db_url: str, clock: FakeClock, world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, secret_key="test-secret-key-123456", sweep_interval_s=0)
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def login(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Bearer headers for a world user, e.g. ``login("agent")``."""
    cache: dict[str, dict[str, str]] = {}

    def _login(username: str) -> dict[str, str]:
        if username not in cache:
            r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            cache[username] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return cache[username]

    return _login
