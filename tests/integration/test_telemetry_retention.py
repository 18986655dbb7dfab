"""Retention on SQLite and PostgreSQL with the FakeClock: raw readings 30 days, minute aggregates 2 years,
from the service, the background round and the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from incucare.adapters.db.tables_telemetry import DeviceTwin, TelemetryDeadLetter, TelemetryMinute, TelemetryReading
from incucare.config import Settings
from incucare.services import telemetry_retention
from incucare.services.background import telemetry_upkeep
from incucare.services.telemetry_ingest import InboundTelemetry, ingest
from incucare.services.telemetry_retention import apply_retention
from tests.conftest import FakeClock
from tests.world import World, build_world


@pytest.fixture
def world(session_factory: sessionmaker[Session], clock: FakeClock) -> World:
    with session_factory() as s:
        return build_world(s, clock.now)


def counts(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t)) or 0)  # type: ignore[return-value]
                     for t in (TelemetryReading, TelemetryMinute, TelemetryDeadLetter))


def feed_days(factory: sessionmaker[Session], clock: FakeClock, days: int) -> None:
    """One reading a day (each in its own minute) and one dead letter, as the clock moves on."""
    for _ in range(days):
        ingest(factory, [
            InboundTelemetry(serial="SN-IVF-001", payload={"ts": clock.now.isoformat(), "temp_c": 37.0},
                             source="inproc", received_at=clock.now),
            InboundTelemetry(serial="SN-IVF-001", payload=b"bad", source="mqtt", received_at=clock.now),
        ], now=clock.now)
        clock.advance(days=1)


def test_raw_kept_30_days_and_aggregates_2_years(session_factory, world, clock):
    feed_days(session_factory, clock, 40)
    assert counts(session_factory) == (40, 40, 40)
    report = apply_retention(session_factory, now=clock.now, raw_days=30, agg_days=730)
    # the clock is 40 days after the first reading: the 10 oldest (ages 40..31 days) go, ages 30..1 stay
    assert (report.raw_deleted, report.minutes_deleted, report.dead_letters_deleted) == (10, 0, 10)
    assert counts(session_factory) == (30, 40, 30)
    clock.advance(days=721)  # the reading of day 31 is now exactly 730 days old
    apply_retention(session_factory, now=clock.now, raw_days=30, agg_days=730)
    assert counts(session_factory) == (0, 9, 0)  # aggregates of the last 9 days are not yet 2 years old
    with session_factory() as s:
        oldest = s.scalar(select(func.min(TelemetryMinute.minute)))
        assert oldest is not None and oldest >= clock.now - timedelta(days=730)


def test_deletion_in_chunks_gets_everything(session_factory, world, clock, monkeypatch):
    monkeypatch.setattr(telemetry_retention, "CHUNK", 3)
    feed_days(session_factory, clock, 10)
    report = apply_retention(session_factory, now=clock.now + timedelta(days=30), raw_days=30, agg_days=30)
    assert (report.raw_deleted, report.minutes_deleted) == (10, 10)
    assert counts(session_factory) == (0, 0, 0)


def test_the_background_round_flags_offline_and_applies_retention(session_factory, world, clock, db_url):
    feed_days(session_factory, clock, 3)
    settings = Settings(database_url=db_url, telemetry_raw_days=1, telemetry_agg_days=2)
    telemetry_upkeep(session_factory, settings, clock.now)
    assert counts(session_factory)[:2] == (1, 2)
    with session_factory() as s:
        twin = s.get(DeviceTwin, world.devices["SN-IVF-001"])
        assert twin is not None and twin.online is False  # last reading a day ago


def test_cli_retention(session_factory, world, clock, db_url, monkeypatch):
    from incucare.cli import app
    from incucare.config import get_settings

    feed_days(session_factory, clock, 5)
    monkeypatch.setenv("INCUCARE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["telemetry", "retention", "--now", clock.now.isoformat(),
                                          "--raw-days", "2", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert '"raw_deleted": 3' in result.stdout and '"minutes_deleted": 0' in result.stdout
    assert counts(session_factory)[0] == 2
    bad = CliRunner().invoke(app, ["telemetry", "retention", "--now", "yesterday"])
    assert bad.exit_code == 2
