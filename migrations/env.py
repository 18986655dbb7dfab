"""Alembic environment: the URL comes from the caller (tests, CLI) or from INCUCARE_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from incucare.adapters.db.engine import make_engine
from incucare.adapters.db.tables import Base
from incucare.config import get_settings

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection handed in by the caller, or one opened from settings."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # batch migrations swap tables
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `incucare db upgrade`")
run_migrations_online()
