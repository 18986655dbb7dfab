"""Run a benchmark on a fresh SQLite file and, when reachable, a fresh PostgreSQL schema."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from incucare.adapters.db.engine import make_engine

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def on_each_database(name: str, run: Callable[[str, str], None]) -> None:
    """Call ``run(label, url)`` for SQLite, then PostgreSQL (skipped with a note when it is not there)."""
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # PostgreSQL is optional for benchmarks
        print(f"\n[{name} · postgresql] skipped: {type(exc).__name__}")
        return
    try:
        run("postgresql", f"{PG_URL}?options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
