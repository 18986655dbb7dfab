"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL (127.0.0.1:5432, database ``test``, trust auth) gets a fresh schema per test. With
``CI=true`` a missing server fails the run; elsewhere those tests skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.tables import Base
from incucare.config import get_settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# apps built by tests do not start the in-app MQTT ingest subscriber unless a test asks for it
# (Settings(mqtt_enabled=True)), as they pass sweep_interval_s=0 for the background worker
os.environ.setdefault("INCUCARE_MQTT_ENABLED", "false")
os.environ.setdefault("INCUCARE_DEMO_FLEET", "false")  # the test world has an 'admin' user, like the demo
PG_ADMIN_URL = os.environ.get("INCUCARE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_problem() -> str | None:
    try:
        engine = make_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}".splitlines()[0]
    return None


_PG_PROBLEM: str | bool | None = False


def require_postgres() -> None:
    """Skip (outside CI) or fail (in CI) when PostgreSQL is missing."""
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _postgres_problem()
    if _PG_PROBLEM:
        if IN_CI:
            pytest.fail(f"CI=true and {_PG_PROBLEM}")
        pytest.skip(str(_PG_PROBLEM))


MQTT_HOST = os.environ.get("INCUCARE_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("INCUCARE_TEST_MQTT_PORT", "1883"))


def _mosquitto_problem() -> str | None:
    import socket

    try:
        with socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2):
            pass
    except OSError as exc:
        return f"Mosquitto not reachable at {MQTT_HOST}:{MQTT_PORT}: {type(exc).__name__}: {exc}"
    return None


_MQTT_PROBLEM: str | bool | None = False


def require_mosquitto() -> None:
    """Skip (outside CI) or fail (in CI) when the MQTT broker is missing."""
    global _MQTT_PROBLEM
    if _MQTT_PROBLEM is False:
        _MQTT_PROBLEM = _mosquitto_problem()
    if _MQTT_PROBLEM:
        if IN_CI:
            pytest.fail(f"CI=true and {_MQTT_PROBLEM}")
        pytest.skip(str(_MQTT_PROBLEM))


@pytest.fixture
def mqtt_broker() -> tuple[str, int]:
    """(host, port) of the real Mosquitto; tests use unique topics/serials so they do not see each other."""
    require_mosquitto()
    return MQTT_HOST, MQTT_PORT


class FakeClock:
    """An injectable clock: tests set and advance time instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Each test reads INCUCARE_* as it sets them: the CLI's get_settings() cache must not carry one test's
    database URL into the next test's command in the same worker."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def clock() -> FakeClock:
    """Friday 2026-11-27 10:00 Beijing time."""
    return FakeClock(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database with the current schema."""
    eng = make_engine(db_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s
