"""Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from incucare.adapters.db.engine import make_engine
from incucare.adapters.db.migrate import current_revision, upgrade
from incucare.adapters.db.tables import Base


def test_upgrade_head_matches_the_models_and_is_repeatable(db_url):
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        head = current_revision(engine)
        assert head is not None
        upgrade(engine)  # a second `make run` finds nothing to do
        assert current_revision(engine) == head
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_upgrade_keeps_existing_data(db_url):
    """A site that ran `make run` last month upgrades in place without losing rows."""
    from sqlalchemy import text

    engine = make_engine(db_url)
    try:
        upgrade(engine, "bfc9a972af42")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO regions (id, code, name_zh, name_en, provinces) "
                              "VALUES (1, 'central', '华中区', 'Central', '[]')"))
            conn.execute(text("INSERT INTO users (id, username, password_hash, full_name, role, email, phone, "
                              "language, active, skills, created_at) VALUES (1, 'old', 'x', 'Old', 'agent', '', '', "
                              "'zh', true, '[]', '2026-01-01 00:00:00')"))
            ts = "'2026-01-01 00:00:00'"
            conn.execute(text(f"INSERT INTO customers (id, code, name, kind, vip, phone, email, notes, created_at) "
                              f"VALUES (1, 'C1', 'Lab', 'hospital', false, '', '', '', {ts})"))
            conn.execute(text("INSERT INTO sites (id, customer_id, name, address, province, city, district, adcode) "
                              "VALUES (1, 1, 'Lab', 'addr', '', '', '', '')"))
            conn.execute(text("INSERT INTO device_models (id, brand, model, co2_sensor, tri_gas, chamber_volume_l) "
                              "VALUES (1, 'B', 'M', 'ir', false, 90)"))
            conn.execute(text(f"INSERT INTO devices (id, serial, model_id, site_id, customer_id, firmware_version, "
                              f"status, created_at) VALUES (1, 'SN1', 1, 1, 1, '', 'in_service', {ts})"))
            conn.execute(text(f"INSERT INTO tickets (id, number, device_id, customer_id, site_id, description, "
                              f"channel, reporter_name, reporter_phone, reporter_email, status, tier, priority, "
                              f"owner_kind, owner_queue, reported_at, created_at, updated_at) VALUES "
                              f"(1, 'T2026-000001', 1, 1, 1, 'x', 'phone', '', '', '', 'new', 1, 'normal', 'queue', "
                              f"'tier1', {ts}, {ts}, {ts})"))
            conn.execute(text(f"INSERT INTO ticket_events (ticket_id, at, actor_name, kind, new_value, note) "
                              f"VALUES (1, {ts}, 'x', 'created', 'new', '')"))
        upgrade(engine)  # tables referenced by others are rebuilt on SQLite: foreign keys must hold afterwards
        with engine.connect() as conn:
            assert conn.execute(text("SELECT number, handoff_count, ping_pong FROM tickets")).one() == (
                "T2026-000001", 0, False)
            assert conn.execute(text("SELECT count(*) FROM ticket_events")).scalar_one() == 1
            if conn.dialect.name == "sqlite":
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            assert conn.execute(text("SELECT username, supervisor_id FROM users")).one() == ("old", None)
            assert conn.execute(text("SELECT code FROM regions")).scalar_one() == "central"
    finally:
        engine.dispose()
