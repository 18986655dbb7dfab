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
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT username, supervisor_id FROM users")).one() == ("old", None)
            assert conn.execute(text("SELECT code FROM regions")).scalar_one() == "central"
    finally:
        engine.dispose()
