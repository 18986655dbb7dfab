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
