"""Electronic signatures on SQLite and PostgreSQL: re-entered password, meaning, time and content hash; a signed
record cannot change except through a new, signed revision; wrong passwords write nothing but their audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from incucare.adapters.db.tables import (
    AuditRecord,
    Calibration,
    FirmwareUpdate,
    PartUsage,
    QualityClaim,
    ServiceVisit,
    WorkReport,
)
from incucare.adapters.db.tables_signatures import ElectronicSignature, RecordRevision
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.errors import Conflict
from incucare.domain.signatures import Meaning, RecordKind, content_hash, manifest
from incucare.services.signatures import content_of
from tests.world import PASSWORD


@dataclass
class Work:
    """A GMP device's ticket with a visit, a work report, a CO2 calibration, a part and a firmware change."""

    ticket_id: int
    ticket_number: str
    report_id: int
    calibration_id: int
    device_id: int


@pytest.fixture
def work(client, login, world, session_factory, clock) -> Work:
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": "SN-GMP-001", "channel": "phone", "description": "CO2 浓度显示偏高,报警"})
    assert r.status_code == 201, r.text
    ticket = r.json()
    engineer = world.users["engineer"]
    device_id = world.devices["SN-GMP-001"]
    start = clock.now + timedelta(hours=3)
    with session_factory() as s:
        visit = ServiceVisit(device_id=device_id, ticket_id=ticket["id"], engineer_id=engineer, kind="repair",
                             started_at=start, ended_at=start + timedelta(hours=1), summary="更换 CO2 传感器并校准")
        s.add(visit)
        s.flush()
        s.add(PartUsage(device_id=device_id, visit_id=visit.id, ticket_id=ticket["id"], part_number="IR-CO2-01",
                        part_name="红外CO2传感器", quantity=1, used_at=start + timedelta(minutes=20)))
        cal = Calibration(device_id=device_id, visit_id=visit.id, performed_at=start + timedelta(minutes=40),
                          parameter="co2", as_found=6.4, as_left=5.05, setpoint=5.0,
                          reference_instrument="GM70-0042", reference_certificate_date=date(2026, 3, 10),
                          performed_by_id=engineer)
        report = WorkReport(ticket_id=ticket["id"], visit_id=visit.id, engineer_id=engineer,
                            diagnosis="红外 CO2 传感器漂移", actions="更换传感器,5% 标准气校准", outcome="fixed",
                            signer_name="李主管", created_at=start + timedelta(hours=1))
        s.add_all([cal, report])
        s.add(FirmwareUpdate(device_id=device_id, ticket_id=ticket["id"], from_version="2.4.1", to_version="2.5.0",
                             release_notes="CO2 补偿算法", performed_by_id=engineer,
                             performed_at=start + timedelta(minutes=50)))
        s.commit()
        return Work(ticket["id"], ticket["number"], report.id, cal.id, device_id)


def _sign(client, headers, kind: str, record_id: int, meaning: str, password: str = PASSWORD, **extra):
    return client.post("/api/v1/signatures", headers=headers, json={
        "record_kind": kind, "record_id": record_id, "meaning": meaning, "password": password, **extra})


def _count(session_factory, model, *where) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_signing_binds_signer_meaning_time_and_content(client, login, work, world, session_factory, clock):
    r = _sign(client, login("engineer"), "work_report", work.report_id, "performed", comment="现场完成")
    assert r.status_code == 201, r.text
    sig = r.json()
    assert (sig["revision"], sig["meaning"], sig["signer_id"], sig["signer_role"]) == (
        1, "performed", world.users["engineer"], "engineer")
    assert sig["meaning_zh"].startswith("执行人") and sig["meaning_en"].startswith("Performed")
    with session_factory() as s:
        report = s.get(WorkReport, work.report_id)
        content = content_of(s, RecordKind.WORK_REPORT, report)
        assert content["parts"] == [["IR-CO2-01", 1]]
        assert sig["content_sha256"] == content_hash(content)
        row = s.get(ElectronicSignature, sig["id"])
        assert sig["manifest_sha256"] == manifest(
            kind=RecordKind.WORK_REPORT, record_id=work.report_id, revision=1, content_sha=content_hash(content),
            signer_id=world.users["engineer"], signer_name=row.signer_name, meaning=Meaning.PERFORMED,
            signed_at=clock.now)
        audit = s.scalars(select(AuditRecord).where(AuditRecord.entity == "signature",
                                                    AuditRecord.action == "sign")).one()
        assert audit.changes["content_sha256"]["new"] == sig["content_sha256"] and audit.hash is not None
    # a reviewer (someone else, HQ) countersigns the same revision; nobody signs the same meaning twice
    manager = login("manager")
    assert _sign(client, manager, "work_report", work.report_id, "reviewed").status_code == 201
    assert _sign(client, manager, "work_report", work.report_id, "reviewed").status_code == 409
    history = client.get("/api/v1/signatures", headers=manager,
                         params={"record_kind": "work_report", "record_id": work.report_id}).json()
    assert [(h["revision"], h["state"], h["intact"], [x["meaning"] for x in h["signatures"]]) for h in history] == [
        (1, "signed", True, ["performed", "reviewed"])]


def test_a_wrong_password_signs_nothing_but_is_audited(client, login, work, session_factory):
    engineer = login("engineer")
    r = _sign(client, engineer, "calibration", work.calibration_id, "performed", password="not-my-password")
    assert r.status_code == 403, r.text
    assert "password" in r.json()["error"]["message_en"]
    assert _count(session_factory, ElectronicSignature) == 0 and _count(session_factory, RecordRevision) == 0
    assert _count(session_factory, AuditRecord, AuditRecord.entity == "signature",
                  AuditRecord.action == "refused") == 1
    # after five wrong passwords in 15 minutes signing is locked, even with the right password
    for _ in range(4):
        assert _sign(client, engineer, "calibration", work.calibration_id, "performed", password="x").status_code == 403
    locked = _sign(client, engineer, "calibration", work.calibration_id, "performed")
    assert locked.status_code == 403 and "too many" in locked.json()["error"]["message_en"]
    assert _count(session_factory, ElectronicSignature) == 0


def test_who_may_sign_what(client, login, work, world):
    # only the author performs; review and approval are for HQ, not the author; customers never e-sign
    assert _sign(client, login("manager"), "work_report", work.report_id, "performed").status_code == 403
    assert _sign(client, login("engineer"), "work_report", work.report_id, "reviewed").status_code == 403
    assert _sign(client, login("engineer"), "calibration", work.calibration_id, "approved").status_code == 422
    assert _sign(client, login("gmpuser"), "work_report", work.report_id, "performed").status_code == 403
    # another customer's record does not exist for them
    assert client.get("/api/v1/signatures", headers=login("customer"),
                      params={"record_kind": "work_report", "record_id": work.report_id}).status_code == 404
    assert client.get("/api/v1/signatures", headers=login("gmpuser"),
                      params={"record_kind": "work_report", "record_id": work.report_id}).status_code == 200
    assert _sign(client, login("engineer"), "work_report", 999_999, "performed").status_code == 404


def test_a_signed_record_changes_only_through_a_new_signed_revision(client, login, work, session_factory, clock):
    engineer, manager = login("engineer"), login("manager")
    assert _sign(client, engineer, "calibration", work.calibration_id, "performed").status_code == 201
    first_hash = client.get("/api/v1/signatures", headers=manager, params={
        "record_kind": "calibration", "record_id": work.calibration_id}).json()[0]["content_sha256"]
    # any code path that changes or deletes the signed record is refused, and nothing is stored
    with UnitOfWork(session_factory) as uow:
        cal = uow.session.get(Calibration, work.calibration_id)
        cal.as_left = 5.0
        with pytest.raises(Conflict, match="electronically signed"):
            uow.session.flush()
    with UnitOfWork(session_factory) as uow:
        uow.session.delete(uow.session.get(Calibration, work.calibration_id))
        with pytest.raises(Conflict):
            uow.session.flush()
    with session_factory() as s:
        assert s.get(Calibration, work.calibration_id).as_left == 5.05

    url = "/api/v1/signatures/revisions"
    body = {"record_kind": "calibration", "record_id": work.calibration_id, "changes": {"as_left": 5.02},
            "reason": "校准后读数抄录错误,按原始记录更正"}
    assert client.post(url, headers=manager, json={**body, "reason": " "}).status_code == 422
    assert client.post(url, headers=manager, json={**body, "changes": {"device_id": 1}}).status_code == 422
    assert client.post(url, headers=login("gmpuser"), json=body).status_code == 403
    clock.advance(hours=1)
    r = client.post(url, headers=manager, json=body)
    assert r.status_code == 201, r.text
    assert (r.json()["revision"], r.json()["state"]) == (2, "open")
    # the new revision must itself be signed; the first one keeps its content and signature
    r = _sign(client, engineer, "calibration", work.calibration_id, "performed")
    assert r.status_code == 201 and r.json()["revision"] == 2
    history = client.get("/api/v1/signatures", headers=manager, params={
        "record_kind": "calibration", "record_id": work.calibration_id}).json()
    assert [(h["revision"], h["state"], h["current"], h["intact"], len(h["signatures"])) for h in history] == [
        (1, "signed", False, None, 1), (2, "signed", True, True, 1)]
    assert history[0]["content_sha256"] == first_hash != history[1]["content_sha256"]
    assert history[1]["reason"].startswith("校准后读数")
    with session_factory() as s:
        revisions = s.scalars(select(RecordRevision).order_by(RecordRevision.revision)).all()
        assert [rv.content["as_left"] for rv in revisions] == [5.05, 5.02]
        audit = s.scalars(select(AuditRecord).where(AuditRecord.entity == "calibration",
                                                    AuditRecord.action == "revise")).one()
        assert audit.changes["as_left"] == {"old": 5.05, "new": 5.02} and audit.reason.startswith("校准后")


def test_claim_approval_is_signed_by_the_approver_and_then_frozen(client, login, work, session_factory):
    r = client.post("/api/v1/hq/claims", headers=login("agent"), json={
        "kind": "refund", "amount_cents": 300_000, "description": "停机导致批次报废", "ticket_id": work.ticket_id})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    manager = login("manager")
    # not approved yet: nothing to sign as approved
    assert _sign(client, manager, "quality_claim", cid, "approved").status_code == 422
    assert _sign(client, manager, "quality_claim", cid, "performed").status_code == 422
    moved = client.post(f"/api/v1/hq/claims/{cid}/transitions", headers=manager,
                        json={"to": "approved", "reason": "属实", "password": PASSWORD})
    assert moved.status_code == 200, moved.text
    assert _sign(client, login("admin"), "quality_claim", cid, "reviewed").status_code == 201
    # the approval was signed when it was given: the same signature again is refused
    assert _sign(client, manager, "quality_claim", cid, "approved").status_code == 409
    with UnitOfWork(session_factory) as uow:
        uow.session.get(QualityClaim, cid).amount_cents = 900_000
        with pytest.raises(Conflict):
            uow.session.flush()
    # the workflow goes on (paying is not part of what was approved)
    paid = client.post(f"/api/v1/hq/claims/{cid}/transitions", headers=manager, json={"to": "paid"})
    assert paid.status_code == 200, paid.text


def test_a_rejected_claim_cannot_be_signed_as_approved_even_once_closed(client, login, work):
    r = client.post("/api/v1/hq/claims", headers=login("agent"), json={
        "kind": "refund", "amount_cents": 50_000, "description": "外观划痕", "ticket_id": work.ticket_id})
    cid = r.json()["id"]
    manager = login("manager")
    for to, reason in (("rejected", "非质量问题"), ("closed", "")):
        moved = client.post(f"/api/v1/hq/claims/{cid}/transitions", headers=manager,
                            json={"to": to, "reason": reason} if reason else {"to": to})
        assert moved.status_code == 200, moved.text
    refused = _sign(client, manager, "quality_claim", cid, "approved")
    assert refused.status_code == 422 and "only an approved claim" in refused.text


def test_the_claim_page_approves_and_signs_in_one_step_with_the_password(client, login, work):
    from tests.integration.test_hq import _csrf, _login_page

    r = client.post("/api/v1/hq/claims", headers=login("agent"), json={
        "kind": "refund", "amount_cents": 100_000, "description": "温控失效", "ticket_id": work.ticket_id})
    cid = r.json()["id"]
    _login_page(client, "manager")
    page = client.get(f"/hq/claims/{cid}")
    assert page.status_code == 200 and 'data-testid="approve-password"' in page.text
    wrong = client.post(f"/hq/claims/{cid}/move", data={"to": "approved", "reason": "属实", "password": "nope",
                                                        "csrf": _csrf(page.text)})
    assert 'data-testid="error"' in wrong.text and 'data-testid="claim-state">已提交' in wrong.text
    approved = client.post(f"/hq/claims/{cid}/move", data={"to": "approved", "reason": "属实", "password": PASSWORD,
                                                           "csrf": _csrf(page.text)})
    assert 'data-testid="claim-state">已批准<' in approved.text
    signatures = client.get(f"/signatures/quality_claim/{cid}")
    assert 'data-testid="signature"' in signatures.text and "Manager 测试" in signatures.text


def _text(page_html: str, start: str, end: str = "</section>") -> str:
    import html
    import re

    at = page_html.index(start)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_html[at:page_html.index(end, at)])).split())


def _meanings(page_html: str) -> list[str]:
    import re

    if 'data-testid="sign-form"' not in page_html:
        return []
    form = page_html[page_html.index('data-testid="sign-form"'):]
    return re.findall(r'<option value="(\w+)"', form[:form.index("</form>")])


def test_the_signature_page_shows_what_is_signed_and_offers_only_the_viewers_meanings(client, login, work):
    """The walk-through found a page that named no ticket and showed none of the content being signed, and that
    offered a manager '执行人:本人执行了该项工作' (performed), which only the author may sign."""
    from tests.integration.test_hq import _login_page

    _login_page(client, "manager")
    page = client.get(f"/signatures/work_report/{work.report_id}?lang=zh").text
    record = _text(page, 'data-testid="signed-record"')
    assert work.ticket_number in _text(page, 'data-testid="sig-record-title"', "</h1>")
    assert f'href="/tickets/{work.ticket_id}" data-testid="sig-ticket-link">{work.ticket_number}<' in page
    assert "故障诊断 红外 CO2 传感器漂移" in record and "处理措施 更换传感器,5% 标准气校准" in record
    assert "工程师 Engineer 测试" in record or "工程师 engineer" in record, record
    assert "使用备件(料号, 数量) IR-CO2-01 × 1" in record and "SN-GMP-001" in record
    assert "签名将用于修订版 1" in record and "首个签名将冻结此修订版" in record
    assert _meanings(page) == ["reviewed", "approved"]  # a manager reviews or approves; never "performed"
    assert "执行人:本人执行了该项工作" not in page

    _login_page(client, "engineer")  # the author performs; review and approval are someone else's
    page = client.get(f"/signatures/work_report/{work.report_id}?lang=zh").text
    assert _meanings(page) == ["performed"]
    assert _sign(client, login("engineer"), "work_report", work.report_id, "performed").status_code == 201
    page = client.get(f"/signatures/work_report/{work.report_id}?lang=zh").text
    assert _meanings(page) == [] and "签名将用于修订版 1 · 已签名" in _text(page, 'data-testid="signed-record"')

    _login_page(client, "manager")
    cal = client.get(f"/signatures/calibration/{work.calibration_id}?lang=en").text
    record = _text(cal, 'data-testid="signed-record"')
    assert "As found 6.4" in record and "As left 5.05" in record and "Reference instrument GM70-0042" in record
    assert "Parameter CO2" in record and "SN-GMP-001" in _text(cal, 'data-testid="sig-record-title"', "</h1>")
    assert _meanings(cal) == ["reviewed"]
