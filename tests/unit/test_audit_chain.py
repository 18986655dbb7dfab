"""The audit hash chain (pure): sealing, and verification naming the first altered, missing or reordered record;
and the signature rules (who may sign what, the manifest)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from incucare.domain.audit_chain import GENESIS, Entry, canonical_json, entry_hash, plain, seal, utc_iso, verify
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.domain.model import Role
from incucare.domain.signatures import Meaning, RecordKind, check_may_sign, content_hash, manifest

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def chain(n: int = 5) -> list[Entry]:
    raw = [Entry(record_id=10 + i, seq=None, at=T0 + timedelta(minutes=i), actor_id=7, actor_name="王工",
                 entity="ticket", entity_id=str(i), action="transition",
                 changes={"status": {"old": "new", "new": "acknowledged"}, "n": i}, reason="客户来电")
           for i in range(n)]
    sealed = seal(raw, 0, GENESIS)
    return [replace(e, seq=s.seq, prev_hash=s.prev_hash, hash=s.hash) for e, s in zip(raw, sealed, strict=True)]


def test_an_untouched_chain_verifies_and_reports_its_head():
    entries = chain()
    result = verify(entries, head_seq=5, head_hash=entries[-1].hash)
    assert result.intact and result.records == 5 and result.head_seq == 5
    assert result.head_hash == entries[-1].hash
    assert entries[0].prev_hash == GENESIS and entries[1].prev_hash == entries[0].hash


def test_the_empty_chain_is_intact():
    assert verify([], head_seq=0, head_hash=GENESIS).intact


def test_canonical_content_ignores_key_order_and_time_zone():
    a = chain(1)[0]
    shanghai = timezone(timedelta(hours=8))
    b = replace(a, at=a.at.astimezone(shanghai), changes={"n": 0, "status": {"new": "acknowledged", "old": "new"}})
    assert entry_hash(a, GENESIS) == entry_hash(b, GENESIS)
    assert utc_iso(b.at) == "2026-12-01T02:00:00.000000Z"
    assert canonical_json({"b": 1, "a": "中"}) == '{"a":"中","b":1}'


@pytest.mark.parametrize("field,value", [
    ("changes", {"status": {"old": "new", "new": "closed"}, "n": 2}), ("reason", "改过"), ("actor_name", "someone"),
    ("actor_id", 8), ("at", T0), ("entity_id", "99"), ("action", "delete"), ("record_id", 999),
])
def test_any_altered_field_is_named_as_that_record(field, value):
    entries = chain()
    entries[2] = replace(entries[2], **{field: value})
    result = verify(entries, 5, entries[-1].hash)
    assert not result.intact
    expected_id = value if field == "record_id" else 12
    problem = result.first_break
    assert (problem.kind, problem.record_id, problem.seq) == ("altered", expected_id, 3)


def test_a_deleted_record_is_named_as_the_gap():
    entries = chain()
    del entries[1]
    problem = verify(entries, 5, entries[-1].hash).first_break
    assert problem.kind == "missing" and problem.record_id == 12 and "seq 2" in problem.message


def test_swapped_records_are_reported_as_reordered_at_the_first_one_out_of_place():
    entries = chain()
    a, b = entries[1], entries[2]
    entries[1], entries[2] = replace(b, seq=2), replace(a, seq=3)
    problem = verify(entries, 5, entries[-1].hash).first_break
    assert problem.kind == "reordered" and problem.record_id == 12


def test_a_rewritten_hash_breaks_the_link_of_the_next_record():
    entries = chain()
    forged = replace(entries[1], reason="forged")
    entries[1] = replace(forged, hash=entry_hash(forged, forged.prev_hash or ""))
    problem = verify(entries, 5, entries[-1].hash).first_break
    assert problem.kind == "reordered" and problem.record_id == 12 and "record 11" in problem.message


def test_deleting_the_newest_records_is_caught_by_the_head():
    entries = chain()
    head = entries[-1].hash
    problem = verify(entries[:3], 5, head).first_break
    assert problem.kind == "truncated" and "seq 4–5" in problem.message


def test_an_unsealed_record_is_named():
    entries = [*chain(2), Entry(record_id=50, seq=None, at=T0, actor_id=None, actor_name="x", entity="e",
                                entity_id="1", action="a", changes={}, reason="")]
    problem = verify(entries).first_break
    assert problem.kind == "unsealed" and problem.record_id == 50


def test_plain_gives_what_json_gives_back():
    assert plain({1: (1, 2), "t": T0, "b": b"ab"}) == {
        "1": [1, 2], "t": "2026-12-01T02:00:00.000000Z",
        "b": {"sha256": "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603", "bytes": 2}}


# ---------------------------------------------------------------- who may sign what (domain.signatures)


K, M, R = RecordKind, Meaning, Role


@pytest.mark.parametrize("kind,meaning,role,author,approvable,error", [
    (K.WORK_REPORT, M.PERFORMED, R.ENGINEER, True, True, None),
    (K.WORK_REPORT, M.PERFORMED, R.PARTNER, True, True, None),
    (K.WORK_REPORT, M.PERFORMED, R.SERVICE_MANAGER, False, True, PermissionDenied),
    (K.WORK_REPORT, M.REVIEWED, R.HQ_EXPERT, False, True, None),
    (K.WORK_REPORT, M.REVIEWED, R.HQ_EXPERT, True, True, PermissionDenied),  # four eyes
    (K.WORK_REPORT, M.REVIEWED, R.ENGINEER, False, True, PermissionDenied),
    (K.WORK_REPORT, M.APPROVED, R.SERVICE_MANAGER, False, True, None),
    (K.WORK_REPORT, M.APPROVED, R.HQ_EXPERT, False, True, PermissionDenied),
    (K.CALIBRATION, M.APPROVED, R.ADMIN, False, True, ValidationFailed),
    (K.QUALITY_CLAIM, M.PERFORMED, R.ADMIN, False, True, ValidationFailed),
    (K.QUALITY_CLAIM, M.APPROVED, R.SERVICE_MANAGER, True, True, None),  # the approver signs the approval
    (K.QUALITY_CLAIM, M.APPROVED, R.SERVICE_MANAGER, True, False, ValidationFailed),
    (K.WORK_REPORT, M.PERFORMED, R.CUSTOMER, True, True, PermissionDenied),
    (K.CALIBRATION, M.PERFORMED, R.AGENT, True, True, PermissionDenied),
])
def test_who_may_sign_what(kind, meaning, role, author, approvable, error):
    if error is None:
        check_may_sign(kind, meaning, role=role, is_author=author, approvable=approvable)
    else:
        with pytest.raises(error):
            check_may_sign(kind, meaning, role=role, is_author=author, approvable=approvable)


def test_the_manifest_binds_signer_meaning_time_and_content():
    base = {"kind": K.CALIBRATION, "record_id": 3, "revision": 1, "content_sha": content_hash({"as_left": 5.05}),
            "signer_id": 7, "signer_name": "王工", "meaning": M.PERFORMED, "signed_at": T0}
    one = manifest(**base)
    assert len(one) == 64 and one == manifest(**base)
    for field, other in [("content_sha", content_hash({"as_left": 5.02})), ("signer_id", 8), ("meaning", M.REVIEWED),
                         ("signed_at", T0 + timedelta(seconds=1)), ("revision", 2)]:
        assert manifest(**{**base, field: other}) != one
