"""Installed-base import from CSV/XLSX: all rows or none, every row error reported, idempotent."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.tables import AuditRecord, Customer, Device, DeviceModel, Site
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.domain.model import Co2SensorType, Role
from incucare.services import installed_base as ib
from incucare.services.context import SYSTEM, Actor
from incucare.services.imports import import_devices, parse_date, parse_yes_no
from tests.world import World

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "samples" / "devices-import-sample.csv"
URL = "/api/v1/imports/devices"
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)

ZH_HEADER = ["序列号", "品牌", "型号", "客户编号", "客户名称", "客户类型", "VIP", "院区/实验室", "地址",
             "安装日期", "保修截止", "固件版本", "状态"]
GOOD_ROWS = [
    ["HF90-WH-001", "Heal Force", "HF90", "C-WH-UH", "武汉某大学附属医院", "医院", "否", "中心实验室",
     "湖北省武汉市洪山区珞喻路1037号", "2024-04-01", "2027-03-31", "2.4.1", "运行中"],
    ["HF90-WH-002", "heal force", "hf90", "C-WH-UH", "武汉某大学附属医院", "医院", "否", "中心实验室",
     "湖北省武汉市洪山区珞喻路1037号", "2024/4/1", "2027/3/31", "", ""],
    ["HF90-SZ-001", "Heal Force", "HF100-TriGas", "C-SZ-IVF", "深圳某生殖中心", "生殖中心(IVF)", "是",
     "胚胎实验室", "广东省深圳市南山区深南大道9988号", "2025.01.15", "2028.01.14", "3.0.0", "in_service"],
    ["SN-IVF-003", "Heal Force", "HF90", "C-IVF", "", "", "", "生殖中心实验室", "", "2025-06-01", "", "",
     "运行中"],
    ["SN-GMP-002", "Heal Force", "HF90", "C-GMP", "广州某生物制药有限公司", "GMP制药企业", "", "细胞车间", "",
     "", "", "2.5.0", "维修中"],
]


def csv_bytes(rows: list[list[str]], *, header: list[str] = ZH_HEADER, sep: str = ",",
              encoding: str = "utf-8-sig") -> bytes:
    lines = [sep.join(header), *(sep.join(r) for r in rows)]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def upload(client, headers, content: bytes, name: str = "devices.csv", **params):  # type: ignore[no-untyped-def]
    return client.post(URL, headers=headers, params=params, files={"file": (name, content, "text/csv")})


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0
                for t in (Customer, Site, Device, AuditRecord)}


def add_models(factory: sessionmaker[Session], *pairs: tuple[str, str]) -> None:
    with factory() as s:
        for brand, model in pairs:
            ib.create_device_model(s, SYSTEM, now=NOW, brand=brand, model=model,
                                   co2_sensor=Co2SensorType.IR, tri_gas=False, chamber_volume_l=160)
        s.commit()


# ---------------------------------------------------------------- the happy path


def test_chinese_csv_creates_customers_sites_and_devices(client, login, world: World, session_factory):
    r = upload(client, login("manager"), csv_bytes(GOOD_ROWS))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True
    assert (body["rows"], body["customers_created"], body["sites_created"]) == (5, 2, 2)
    assert (body["devices_created"], body["devices_updated"], body["devices_unchanged"]) == (4, 1, 0)
    assert body["summary"] == "5 rows: 2 customers created, 2 sites created, 4 devices created, 1 updated, 0 unchanged"
    assert body["updates"] == [{"row": 6, "serial": "SN-GMP-002",
                                "changes": {"firmware_version": ["2.4.1", "2.5.0"],
                                            "status": ["in_service", "under_repair"]}}]

    with session_factory() as s:
        uh = s.scalar(select(Customer).where(Customer.code == "C-WH-UH"))
        assert uh is not None and uh.name == "武汉某大学附属医院" and uh.kind == "hospital" and not uh.vip
        assert uh.region_id == world.regions["central"]
        szivf = s.scalar(select(Customer).where(Customer.code == "C-SZ-IVF"))
        assert szivf is not None and szivf.kind == "ivf_centre" and szivf.vip
        wh_site = s.scalar(select(Site).where(Site.customer_id == uh.id))
        assert wh_site is not None
        assert (wh_site.province, wh_site.city, wh_site.district) == ("湖北省", "武汉市", "洪山区")
        assert wh_site.region_id == world.regions["central"] and wh_site.latitude is not None
        sz_site = s.scalar(select(Site).where(Site.customer_id == szivf.id))
        assert sz_site is not None and (sz_site.province, sz_site.city) == ("广东省", "深圳市")
        assert sz_site.region_id == world.regions["south"]

        devices = {d.serial: d for d in s.scalars(select(Device))}
        d1, d2 = devices["HF90-WH-001"], devices["HF90-WH-002"]
        assert d1.site_id == d2.site_id == wh_site.id and d1.customer_id == uh.id
        assert (d1.install_date, d1.warranty_end, d1.firmware_version) == (date(2024, 4, 1), date(2027, 3, 31),
                                                                           "2.4.1")
        assert (d2.install_date, d2.firmware_version, d2.status) == (date(2024, 4, 1), "", "in_service")
        assert devices["HF90-SZ-001"].model_id == world.models["trigas"]
        assert devices["SN-IVF-003"].site_id == world.sites["ivf"]
        gmp2 = devices["SN-GMP-002"]
        assert (gmp2.firmware_version, gmp2.status, gmp2.install_date) == ("2.5.0", "under_repair",
                                                                          date(2025, 3, 1))
        audits = s.scalars(select(AuditRecord).where(AuditRecord.reason == "import devices.csv")).all()
        assert sorted((a.entity, a.action) for a in audits) == sorted(
            [("customer", "create")] * 2 + [("site", "create")] * 2 + [("device", "create")] * 4
            + [("device", "update")])
        assert all(a.actor_id == world.users["manager"] for a in audits)


def test_same_file_twice_changes_nothing(client, login, world, session_factory):
    content = csv_bytes(GOOD_ROWS)
    assert upload(client, login("admin"), content).status_code == 200
    before = counts(session_factory)
    r = upload(client, login("admin"), content)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["customers_created"], body["sites_created"], body["devices_created"],
            body["devices_updated"], body["devices_unchanged"]) == (0, 0, 0, 0, 5)
    assert body["updates"] == []
    assert counts(session_factory) == before


def test_existing_device_moves_to_another_customer_site(client, login, world, session_factory):
    rows = [["SN-IVF-002", "Heal Force", "HF90", "C-GMP", "", "", "", "细胞车间", "", "", "", "", ""]]
    r = upload(client, login("manager"), csv_bytes(rows))
    assert r.status_code == 200, r.text
    assert r.json()["updates"][0]["changes"] == {"site": ["生殖中心实验室", "细胞车间"]}
    with session_factory() as s:
        device = s.get(Device, world.devices["SN-IVF-002"])
        assert device is not None
        assert (device.site_id, device.customer_id) == (world.sites["gmp"], world.customers["gmp"])
        audit = s.scalars(select(AuditRecord).where(AuditRecord.entity == "device",
                                                    AuditRecord.entity_id == str(device.id),
                                                    AuditRecord.action == "update")).one()
        assert audit.changes["customer_id"] == {"old": world.customers["ivf"], "new": world.customers["gmp"]}


def test_xlsx_with_english_headers_and_date_cells(client, login, world, session_factory):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Serial", "Brand", "Model", "Customer Code", "Customer Name", "Customer Kind", "VIP",
               "Site Name", "Site Address", "Install Date", "Warranty End", "Firmware Version", "Status"])
    ws.append([20240101, "Heal Force", "HF90", "C-ZZ-CDC", "河南某疾控中心", "CDC", False, "病毒所",
               "河南省郑州市二七区建设东路1号", datetime(2024, 1, 1), datetime(2026, 12, 31), 2.4, "In service"])
    ws.append([None] * 13)
    ws.append(["XL-002", "Heal Force", "HF90", "C-ZZ-CDC", "河南某疾控中心", "cdc", "no", "病毒所", None,
               "2024-02-01", date(2027, 1, 31), "2.4.1", "out_of_service"])
    buffer = io.BytesIO()
    wb.save(buffer)
    r = client.post(URL, headers=login("manager"), files={"file": ("台账.xlsx", buffer.getvalue(),
                                                                   "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == ("2 rows: 1 customer created, 1 site created, 2 devices created, "
                                   "0 updated, 0 unchanged")
    with session_factory() as s:
        devices = {d.serial: d for d in s.scalars(select(Device).where(Device.serial.in_(["20240101", "XL-002"])))}
        assert devices["20240101"].install_date == date(2024, 1, 1)
        assert devices["20240101"].firmware_version == "2.4"
        assert devices["XL-002"].warranty_end == date(2027, 1, 31)
        assert devices["XL-002"].status == "out_of_service"
        site = s.get(Site, devices["XL-002"].site_id)
        assert site is not None and (site.province, site.city, site.district) == ("河南省", "郑州市", "二七区")


def test_gbk_csv_with_semicolons(client, login, world, session_factory):
    content = csv_bytes(GOOD_ROWS[:3], sep=";", encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    r = upload(client, login("manager"), content)
    assert r.status_code == 200, r.text
    assert r.json()["devices_created"] == 3
    with session_factory() as s:
        assert s.scalar(select(Customer.name).where(Customer.code == "C-SZ-IVF")) == "深圳某生殖中心"


def test_dry_run_reports_but_writes_nothing(client, login, world, session_factory):
    before = counts(session_factory)
    r = upload(client, login("manager"), csv_bytes(GOOD_ROWS), dry_run="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True and body["devices_created"] == 4 and body["devices_updated"] == 1
    assert body["summary"].endswith("(dry run: nothing written)")
    assert counts(session_factory) == before


def test_sample_file_in_docs_imports_cleanly(client, login, world, session_factory):
    add_models(session_factory, ("Heal Force", "HF240"), ("Biobase", "BJPX-C160"))
    r = upload(client, login("manager"), SAMPLE.read_bytes(), name=SAMPLE.name)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] == [] and body["rows"] == 10 and body["devices_created"] == 10


# ---------------------------------------------------------------- errors


def test_bad_rows_are_all_reported_and_nothing_is_written(client, login, world, session_factory):
    ok = GOOD_ROWS[0]
    rows = [
        ok,                                                                                   # row 2: fine
        ["", "Heal Force", "HF90", "C-WH-UH", "", "", "", "中心实验室", "", "", "", "", ""],   # 3 no serial
        ["BAD-1", "Heal Force", "HF90", "C-WH-UH", "", "", "", "中心实验室", "", "2024-13-01", "", "", ""],
        ["BAD-2", "Heal Force", "HF90", "C-WH-UH", "", "", "", "中心实验室", "", "2025-01-01", "2024-12-31",
         "", ""],                                                                             # 5 warranty
        ["BAD-3", "Heal Force", "HF999", "C-WH-UH", "", "", "", "中心实验室", "", "", "", "", ""],  # 6 model
        ["BAD-4", "Heal Force", "HF90", "C-NEW", "新客户", "动物园", "", "实验室", "火星基地1号", "", "", "",
         "坏了"],                                                                              # 7 kind/status/address
        ["DUP-1", "Heal Force", "HF90", "C-WH-UH", "", "", "", "中心实验室", "", "", "", "", ""],   # 8 duplicate
        ["DUP-1", "Heal Force", "HF90", "C-WH-UH", "", "", "", "中心实验室", "", "", "", "", ""],   # 9 duplicate
        ["BAD-5", "Heal Force", "HF90", "C-IVF", "别的名字", "", "", "生殖中心实验室", "", "", "", "", ""],
        ["BAD-6", "Heal Force", "HF90", "C-NONAME", "", "", "", "实验室", "湖北省武汉市武昌区解放路1号", "",
         "", "", ""],                                                                         # 11 new customer
        ["BAD-7", "Heal Force", "HF90", "C-IVF", "", "", "", "新场地", "", "", "", "", ""],     # 12 new site
    ]
    before = counts(session_factory)
    r = upload(client, login("manager"), csv_bytes(rows))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert "nothing was imported" in error["message"]
    found = {(d["row"], d["field"]) for d in error["details"]}
    assert found == {
        (3, "serial"), (4, "install_date"), (5, "warranty_end"), (6, "model"),
        (7, "customer_kind"), (7, "status"), (7, "site_address"), (8, "serial"), (9, "serial"),
        (10, "customer_name"), (11, "customer_name"), (11, "customer_kind"), (12, "site_address"),
    }
    by_key = {(d["row"], d["field"]): d for d in error["details"]}
    assert all(d["message"] for d in error["details"])
    assert by_key[(3, "serial")]["column"] == "序列号"
    assert "2024-13-01" in by_key[(4, "install_date")]["message"]
    assert "Heal Force HF999" in by_key[(6, "model")]["message"]
    assert "Heal Force HF90" in by_key[(6, "model")]["message"]  # lists the known models
    assert "rows 8, 9" in by_key[(8, "serial")]["message"]
    assert "武汉某生殖医学中心" in by_key[(10, "customer_name")]["message"]
    assert "could not be located" in by_key[(7, "site_address")]["message"]
    assert "ivf_centre" in by_key[(7, "customer_kind")]["message"]
    assert counts(session_factory) == before


def test_unknown_and_missing_columns_are_header_errors(client, login, world):
    header = ["序列号", "品牌", "客户编号", "颜色", "Weight"]
    r = upload(client, login("manager"), csv_bytes([["X-1", "Heal Force", "C-IVF", "白", "80"]], header=header))
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert [(d["row"], d["field"]) for d in details] == [(1, "header"), (1, "header")]
    assert "'颜色', 'Weight'" in details[0]["message"]
    assert "model (型号)" in details[1]["message"] and "site_name (场地名称)" in details[1]["message"]


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("devices.txt", b"serial\nX", "unsupported file type '.txt'"),
    ("devices.xls", b"\xd0\xcf\x11\xe0", ".xls files are not supported"),
    ("devices.csv", b"", "is empty"),
    ("devices.csv", "序列号,品牌\r\n".encode(), "no data rows"),
    ("devices.xlsx", b"not a zip", "not a valid .xlsx"),
])
def test_unusable_files_get_a_clear_422(client, login, world, name, content, fragment):
    r = upload(client, login("manager"), content, name=name)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_failed"
    assert fragment in r.json()["error"]["message"]


def test_missing_file_field_is_422(client, login, world):
    r = client.post(URL, headers=login("manager"), data={"other": "x"})
    assert r.status_code == 422
    assert "'file'" in r.json()["error"]["message"]


@pytest.mark.parametrize("username", ["customer", "agent", "engineer"])
def test_only_managers_may_import(client, login, world, session_factory, username):
    before = counts(session_factory)
    r = upload(client, login(username), csv_bytes(GOOD_ROWS))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "permission_denied"
    assert counts(session_factory) == before


def test_upload_over_the_limit_is_413(client, login, world):
    client.app.state.settings = client.app.state.settings.model_copy(update={"max_upload_mb": 1})
    r = upload(client, login("manager"), b"x" * (1024 * 1024 + 200_000))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_unauthenticated_is_401(client, world):
    assert upload(client, {}, csv_bytes(GOOD_ROWS)).status_code == 401


# ---------------------------------------------------------------- the service directly


def test_service_rejects_non_managers_and_oversized_files(session_factory, world):
    agent = Actor(user_id=None, name="agent", role=Role.AGENT)
    with session_factory() as s:
        with pytest.raises(PermissionDenied):
            import_devices(s, agent, now=NOW, filename="a.csv", content=csv_bytes(GOOD_ROWS))
        huge = csv_bytes([["S"]] * 50_001, header=["序列号"])
        with pytest.raises(ValidationFailed, match="more than 50,000"):
            import_devices(s, SYSTEM, now=NOW, filename="a.csv", content=huge)


def test_two_thousand_rows_import_and_reimport(session_factory, world):
    rows = []
    cities = ["湖北省武汉市武昌区解放路{}号", "广东省广州市天河区天河路{}号", "河南省郑州市金水区花园路{}号"]
    for i in range(2000):
        customer = i // 20
        rows.append([f"BULK-{i:05d}", "Heal Force", "HF90", f"C-B{customer:03d}", f"客户{customer:03d}",
                     "医院", "", f"实验室{i // 5 % 4}", cities[customer % 3].format(customer + 1),
                     "2024-01-01", "2027-01-01", "2.4.1", "运行中"])
    content = csv_bytes(rows)
    with session_factory() as s:
        report = import_devices(s, SYSTEM, now=NOW, filename="bulk.csv", content=content)
        assert report.ok, report.errors[:5]
        assert (report.customers_created, report.sites_created, report.devices_created) == (100, 400, 2000)
        s.commit()
    with session_factory() as s:
        report = import_devices(s, SYSTEM, now=NOW, filename="bulk.csv", content=content)
        assert report.ok and report.devices_unchanged == 2000 and report.devices_created == 0
        assert not s.new and not s.dirty


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03-01", date(2025, 3, 1)), ("2025/3/1", date(2025, 3, 1)), ("2025.03.01", date(2025, 3, 1)),
    ("2025年3月1日", date(2025, 3, 1)), ("2025-03-01 00:00:00", date(2025, 3, 1)),
])
def test_date_formats(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["01/03/2025", "2025-02-30", "March 1", "1899-12-31"])
def test_bad_dates(text):
    with pytest.raises(ValueError):
        parse_date(text)


def test_brand_may_be_written_in_either_language(session_factory, world):
    add_models(session_factory, ("Biobase 博科", "BJPX-C160"))
    rows = [[f"BB-{i}", brand, "bjpx-c160", "C-IVF", "", "", "", "生殖中心实验室", "", "", "", "", ""]
            for i, brand in enumerate(["Biobase", "博科", "biobase  博科"])]
    with session_factory() as s:
        report = import_devices(s, SYSTEM, now=NOW, filename="b.csv", content=csv_bytes(rows))
        assert report.ok, report.errors
        assert report.devices_created == 3


def test_excel_serial_date_and_yes_no():
    assert parse_date(45658, excel=True) == date(2025, 1, 1)
    assert parse_yes_no("是") is True and parse_yes_no("否") is False and parse_yes_no("YES") is True
    with pytest.raises(ValueError):
        parse_yes_no("maybe")


# ---------------------------------------------------------------- the CLI


def _cli(args: list[str], db: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INCUCARE_DATABASE_URL": f"sqlite:///{db}"}
    code = "from incucare.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_cli_import_devices(tmp_path: Path):
    db = tmp_path / "cli.db"
    upgraded = _cli(["db", "upgrade"], db, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    engine = make_engine(f"sqlite:///{db}")
    factory = make_session_factory(engine)
    add_models(factory, ("Heal Force", "HF90"), ("Heal Force", "HF240"), ("Biobase", "BJPX-C160"))

    good = _cli(["import", "devices", str(SAMPLE), "--json"], db, tmp_path)
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] is True and report["devices_created"] == 10 and report["customers_created"] == 6

    bad_file = tmp_path / "bad.csv"
    bad_file.write_bytes(csv_bytes([["X-1", "Nobody", "N1", "C-X", "某客户", "医院", "", "实验室",
                                     "湖北省武汉市武昌区解放路1号", "2024-01-01", "2023-01-01", "", ""]]))
    bad = _cli(["import", "devices", str(bad_file)], db, tmp_path)
    assert bad.returncode == 1
    assert "row 2, column model" in bad.stderr and "row 2, column warranty_end" in bad.stderr
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 10
        assert s.scalar(select(func.count()).select_from(DeviceModel)) == 3

    text_file = tmp_path / "notes.txt"
    text_file.write_text("[bold]not a spreadsheet")
    refused = _cli(["import", "devices", str(text_file)], db, tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("import refused:")
    engine.dispose()
