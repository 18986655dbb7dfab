"""The demo's preventive maintenance looks like a well-run service business, on SQLite and PostgreSQL.

After ``load_demo`` a service manager opening /maintenance should see mostly done visits (on time, with the
service record, calibration and parts the scheduler reads), a small but non-zero share overdue, and the rest
due or upcoming; never a visit before its agreement starts. A new generation round at the same moment adds
nothing, since the history follows the rules.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import Calibration, Contract, PartUsage, ServiceVisit
from incucare.adapters.db.tables_care import PreventiveVisit
from incucare.domain.maintenance import PmTask, VisitStatus, due_state, task_of_part
from incucare.services.demo import load_demo
from incucare.services.maintenance import VISIT_KIND, generate_visits, local_day

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def test_demo_maintenance_is_mostly_done_on_time_with_a_few_overdue(
        session_factory: sessionmaker[Session]) -> None:
    load_demo(session_factory, now=NOW, scale=0.1)
    today = local_day(NOW)
    with session_factory() as s:
        rows = s.execute(select(PreventiveVisit, Contract).join(Contract, Contract.id == PreventiveVisit.contract_id)
                         ).all()
        states: Counter[str] = Counter()
        for visit, contract in rows:
            assert contract.start_date <= visit.window_start <= visit.due_date <= contract.end_date, visit.id
            if visit.status == VisitStatus.DONE.value:
                states["done"] += 1
                assert visit.completed_at is not None and visit.due_date < today
                assert visit.window_start <= local_day(visit.completed_at) <= visit.window_end, visit.id
            else:
                assert visit.status in (VisitStatus.PLANNED.value, VisitStatus.FLAGGED.value)
                states["open"] += 1
                states[due_state(window_start=visit.window_start, window_end=visit.window_end, today=today).value] += 1
                states["flagged"] += visit.status == VisitStatus.FLAGGED.value
        assert states["done"] > 2 * states["open"] > 0, states
        assert 0 < states["overdue"] <= 0.15 * states["open"], states
        assert states["upcoming"] + states["due"] > states["overdue"], states

        done = s.scalars(select(PreventiveVisit).where(PreventiveVisit.status == VisitStatus.DONE.value)).all()
        records = {v.id: v for v in s.scalars(select(ServiceVisit).where(ServiceVisit.kind == VISIT_KIND))}
        parts: dict[int, set[PmTask | None]] = {}
        for usage in s.scalars(select(PartUsage)):
            parts.setdefault(usage.visit_id or 0, set()).add(task_of_part(usage.part_number, usage.part_name))
        calibrated = set(s.scalars(select(Calibration.visit_id)))
        assert any(PmTask.HEPA_FILTER.value in v.tasks for v in done)
        for visit in done:
            assert visit.service_visit_id in records and records[visit.service_visit_id].device_id == visit.device_id
            for task in (PmTask.HEPA_FILTER, PmTask.CO2_SENSOR):
                assert (task.value in visit.tasks) == (task in parts.get(visit.service_visit_id, set())), visit.id
            if PmTask.CALIBRATION.value in visit.tasks:
                assert visit.service_visit_id in calibrated

        again = generate_visits(s, now=NOW)
        assert (again.created, again.joined) == (0, 0)
