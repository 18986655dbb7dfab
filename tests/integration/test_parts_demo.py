"""The demo's spare parts: a catalogue, a warehouse per service point and HQ, a van per field engineer, stock
whose ledger adds up, some of it below minimum, and transfers in transit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.tables import (
    Base,
    Part,
    PartTransfer,
    ServicePoint,
    StockLevel,
    StockMovement,
    User,
    Warehouse,
)
from incucare.domain.model import Role
from incucare.services import parts
from incucare.services.context import SYSTEM
from incucare.services.demo import load_demo

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def _stock(factory: sessionmaker[Session]) -> list[tuple[str, str, int, int, int, int]]:
    with factory() as s:
        return [tuple(r) for r in s.execute(
            select(Warehouse.code, Part.number, StockLevel.on_hand, StockLevel.reserved, StockLevel.min_qty,
                   StockLevel.max_qty).join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
            .join(Part, Part.id == StockLevel.part_id).order_by(Warehouse.code, Part.number))]


def test_demo_stock_is_complete_and_adds_up(session_factory):
    load_demo(session_factory, now=NOW, scale=0.1)
    with session_factory() as s:
        catalogue = {p.number: p for p in s.scalars(select(Part))}
        assert len(catalogue) >= 25
        assert {"IR-CO2-01", "TC-CO2-01", "O2-SEN-01", "PT100-01", "MB-01", "LCD-01", "GSK-01", "HEPA-01",
                "SOL-CO2-01", "CAL-GAS-5", "UV-01", "PSU-01", "FUSE-KIT"} <= set(catalogue)
        assert catalogue["MB-01"].long_lead and catalogue["LCD-01"].long_lead and not catalogue["FUSE-KIT"].long_lead
        assert catalogue["FUSE-KIT"].compatible_models == []
        assert all("HF100" in m or "HF90" in m for m in catalogue["GSK-01"].compatible_models)
        points = s.scalars(select(ServicePoint)).all()
        kinds = dict(s.execute(select(Warehouse.service_point_id, Warehouse.kind)
                               .where(Warehouse.kind != "van")).all())
        assert {p.id for p in points} == set(kinds)
        assert [kinds[p.id] for p in points if p.is_hq] == ["hq"]
        engineers = set(s.scalars(select(User.id).where(User.role == Role.ENGINEER.value)))
        vans = set(s.scalars(select(Warehouse.engineer_id).where(Warehouse.kind == "van")))
        assert engineers == vans and len(vans) == 40
        sums = {(w, p): (int(h), int(r)) for w, p, h, r in s.execute(
            select(StockMovement.warehouse_id, StockMovement.part_id, func.sum(StockMovement.on_hand_delta),
                   func.sum(StockMovement.reserved_delta)).group_by(StockMovement.warehouse_id,
                                                                    StockMovement.part_id))}
        for level in s.scalars(select(StockLevel)):
            assert sums.get((level.warehouse_id, level.part_id), (0, 0)) == (level.on_hand, level.reserved)
        low = parts.low_stock(s, SYSTEM, limit=500)
        assert low.total >= 10 and all(r.advice is not None for r in low.items)
        in_transit = s.scalars(select(PartTransfer).where(PartTransfer.state == "in_transit")).all()
        assert len(in_transit) >= 2 and any(t.eta < NOW for t in in_transit)
        persona = parts.van_of(s, s.scalar(select(User.id).where(User.username == "engineer")))
        free = parts.availability_for(s, ["IR-CO2-01", "GSK-01"], [persona.id])
        assert all(v >= 1 for v in free.values()), free


def test_demo_stock_is_deterministic(tmp_path: Path):
    factories = []
    for name in ("a.db", "b.db"):
        engine = make_engine(f"sqlite:///{tmp_path / name}")
        Base.metadata.create_all(engine)
        factories.append(make_session_factory(engine))
        load_demo(factories[-1], now=NOW, scale=0.05)
    assert _stock(factories[0]) == _stock(factories[1])
