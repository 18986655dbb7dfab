"""The per-device GMP service record on SQLite and PostgreSQL: every ticket, visit, part, calibration (as found /
as left, reference instrument and certificate date), firmware change and signature in date order, as PDF, for
the device's own customer only; and the Part 11 signature and audit pages."""

from __future__ import annotations

import re
from datetime import date

from incucare.adapters.reports.device_record_pdf import render
from incucare.domain.model import Role
from incucare.services.context import Actor
from incucare.services.device_record import build
from tests.integration.test_hq import _csrf, _login_page
from tests.integration.test_signatures import _sign, work  # noqa: F401  (the fixture)


def test_the_record_lists_everything_in_date_order(client, login, work, world, session_factory, clock):  # noqa: F811
    clock.advance(hours=6)  # after the visit
    assert _sign(client, login("engineer"), "calibration", work.calibration_id, "performed").status_code == 201
    customer = Actor(user_id=world.users["gmpuser"], name="GMP", role=Role.CUSTOMER,
                     customer_id=world.customers["gmp"])
    with session_factory() as s:
        record = build(s, customer, work.device_id, now=clock.now)
    assert record.serial == "SN-GMP-001" and record.customer == "广州某生物制药有限公司"
    kinds = [line.kind for line in record.lines]
    assert kinds == ["ticket", "visit", "part", "calibration", "firmware", "work_report", "signature"]
    assert [line.at for line in record.lines] == sorted(line.at for line in record.lines)
    calibration = next(line for line in record.lines if line.kind == "calibration")
    assert "GM70-0042" in calibration.zh and "2026-03-10" in calibration.en and "as found 6.4" in calibration.en
    assert "2.4.1 → 2.5.0" in next(line.en for line in record.lines if line.kind == "firmware")
    assert "Performed" in record.lines[-1].en and "Engineer 测试" in record.lines[-1].en
    [row] = record.calibrations
    assert (row.as_found, row.as_left, row.setpoint, row.reference_instrument, row.reference_certificate_date) == (
        6.4, 5.05, 5.0, "GM70-0042", date(2026, 3, 10))
    assert row.signatures and row.signatures[0].startswith("Performed: Engineer")
    pdf = render(record, lang="en")
    assert pdf.startswith(b"%PDF") and b"/Type /Page" in pdf
    assert b"SN-GMP-001" in pdf  # the document title
    # the content streams are uncompressed: the CID font writes text as UCS-2 in literal strings
    text = _pdf_text(pdf)
    assert "GM70-0042" in text and "As found" in text and "Performed:" in text and "2.5.0" in text
    assert "校准前" in _pdf_text(render(record, lang="zh"))


def _pdf_text(pdf: bytes) -> str:
    """The text shown by ``Tj`` in uncompressed content streams written with the UCS-2 CID font."""
    def unescape(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        return bytes([int(code, 8)]) if len(code) == 3 else {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(code, code)

    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", stream, re.S):
            out.append(re.sub(rb"\\([0-7]{3}|.)", unescape, literal, flags=re.S).decode("utf-16-be", "replace"))
    return " ".join(out)


def test_a_customer_downloads_only_its_own_devices_record(client, login, work, world):  # noqa: F811
    url = f"/api/v1/devices/{work.device_id}/service-record.pdf"
    mine = client.get(url, headers=login("gmpuser"))
    assert mine.status_code == 200, mine.text
    assert mine.headers["content-type"] == "application/pdf" and mine.content.startswith(b"%PDF")
    assert "SN-GMP-001" in mine.headers["content-disposition"]
    assert client.get(url, headers=login("customer")).status_code == 404
    assert client.get(url, headers=login("manager")).status_code == 200
    assert client.get(url).status_code == 401
    assert client.get("/api/v1/devices/999999/service-record.pdf", headers=login("manager")).status_code == 404


def test_pages_link_the_record_and_sign_with_the_password(client, login, work, world):  # noqa: F811
    _login_page(client, "gmpuser")
    device = client.get(f"/devices/{work.device_id}")
    assert device.status_code == 200 and 'data-testid="service-record-pdf"' in device.text
    pdf = client.get(f"/devices/{work.device_id}/service-record.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    other = world.devices["SN-IVF-001"]
    assert client.get(f"/devices/{other}/service-record.pdf").status_code == 404
    assert client.get("/audit").status_code == 403

    csrf = _login_page(client, "engineer")
    page = client.get(f"/signatures/work_report/{work.report_id}")
    assert page.status_code == 200 and 'data-testid="sign-form"' in page.text
    assert f"/signatures/calibration/{work.calibration_id}" in page.text
    wrong = client.post(f"/signatures/work_report/{work.report_id}/sign",
                        data={"meaning": "performed", "password": "nope", "csrf": _csrf(page.text)})
    assert wrong.status_code == 200 and "密码错误" in wrong.text and 'data-testid="signature"' not in wrong.text
    done = client.post(f"/signatures/work_report/{work.report_id}/sign",
                       data={"meaning": "performed", "password": "secret-pw", "csrf": csrf})
    assert done.status_code == 200 and 'data-testid="signature"' in done.text and 'data-testid="intact"' in done.text

    _login_page(client, "admin")
    audit = client.get("/audit?lang=en")
    assert audit.status_code == 200 and 'data-testid="audit-intact"' in audit.text
