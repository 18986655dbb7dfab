"""SQLAlchemy storage: tables, engine set-up, repositories and the unit of work.

Importing this package registers every table module on ``Base.metadata`` (migrations and ``create_all``
see the whole schema whichever module was imported first).
"""

from incucare.adapters.db import (
    tables,
    tables_alarms,
    tables_care,
    tables_findings,
    tables_signatures,
    tables_telemetry,
)

__all__ = ["tables", "tables_alarms", "tables_care", "tables_findings", "tables_signatures", "tables_telemetry"]
