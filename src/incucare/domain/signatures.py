"""Electronic signatures (21 CFR Part 11 §11.50/§11.70 spirit): what may be signed, by whom, with which meaning,
and the manifest that binds signer, meaning, time and the hash of the signed content together.

A signature is a re-entered password (checked by the service) plus this manifest; the customer's drawn
signature on a work report is a different thing (an acknowledgement, not a Part 11 signature).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incucare.domain.audit_chain import canonical_json, plain, sha256_hex, utc_iso
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.domain.labels import LabelledEnum
from incucare.domain.model import Role


class RecordKind(LabelledEnum):
    """The records that carry Part 11 signatures."""

    WORK_REPORT = ("work_report", "服务报告", "Work report")
    CALIBRATION = ("calibration", "校准记录", "Calibration record")
    QUALITY_CLAIM = ("quality_claim", "质量索赔审批", "Quality-claim approval")


class Meaning(LabelledEnum):
    """What the signer states by signing (shown with the signature, zh and en)."""

    PERFORMED = ("performed", "执行人:本人执行了该项工作", "Performed: I did this work")
    REVIEWED = ("reviewed", "审核人:本人已审核该记录", "Reviewed: I reviewed this record")
    APPROVED = ("approved", "批准人:本人批准该记录", "Approved: I approve this record")


MEANINGS: dict[RecordKind, frozenset[Meaning]] = {
    RecordKind.WORK_REPORT: frozenset({Meaning.PERFORMED, Meaning.REVIEWED, Meaning.APPROVED}),
    RecordKind.CALIBRATION: frozenset({Meaning.PERFORMED, Meaning.REVIEWED}),
    RecordKind.QUALITY_CLAIM: frozenset({Meaning.REVIEWED, Meaning.APPROVED}),
}
"""Which meanings make sense for which record (nobody "performs" a claim approval)."""
SIGNER_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT, Role.DISPATCHER, Role.ENGINEER,
                          Role.PARTNER})
REVIEW_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT})
APPROVE_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER})
MAX_FAILURES = 5
"""Wrong passwords in ``FAILURE_WINDOW_MINUTES`` after which signing is refused for a while (§11.300(d))."""
FAILURE_WINDOW_MINUTES = 15


def check_may_sign(kind: RecordKind, meaning: Meaning, *, role: Role, is_author: bool,
                   approvable: bool = True) -> None:
    """Refuse a signature the signer may not give: 422 for a meaning that does not fit the record, 403 for a
    signer who may not give it (only the author performs; review and approval are by someone else)."""
    if meaning not in MEANINGS[kind]:
        allowed = ", ".join(sorted(m.value for m in MEANINGS[kind]))
        raise ValidationFailed(f"a {kind.en.lower()} is not signed as '{meaning.value}' (allowed: {allowed})",
                               zh=f"{kind.zh}不能以「{meaning.zh}」签名(允许:{allowed})",
                               details=[{"field": "meaning", "message": f"one of {allowed}"}])
    if role not in SIGNER_ROLES:
        raise PermissionDenied("electronic signatures are given by service staff", zh="电子签名仅限服务人员")
    if meaning is Meaning.PERFORMED and not is_author:
        raise PermissionDenied("only the person who did the work signs it as performed",
                               zh="只有执行该工作的人员可以以执行人身份签名")
    if meaning is Meaning.REVIEWED and (role not in REVIEW_ROLES or is_author):
        raise PermissionDenied("a review is signed by an HQ expert or manager other than the author",
                               zh="审核签名须由作者以外的总部专家或经理完成")
    if meaning is Meaning.APPROVED:
        if role not in APPROVE_ROLES or (is_author and kind is not RecordKind.QUALITY_CLAIM):
            raise PermissionDenied("an approval is signed by a service manager or administrator other than the author",
                                   zh="批准签名须由作者以外的售后经理或系统管理员完成")
        if not approvable:
            raise ValidationFailed("only an approved claim can be signed as approved",
                                   zh="只有已批准的索赔可以签署批准签名")


def content_hash(content: Mapping[str, Any]) -> str:
    """The hash of a record's signed content (canonical JSON)."""
    return sha256_hex(canonical_json(plain(content)))


def manifest(*, kind: RecordKind, record_id: int, revision: int, content_sha: str, signer_id: int,
             signer_name: str, meaning: Meaning, signed_at: datetime) -> str:
    """The hash that binds one signature: who, in which meaning, when, to exactly which content."""
    return sha256_hex(canonical_json({
        "record": {"kind": kind.value, "id": record_id, "revision": revision, "content_sha256": content_sha},
        "signer": {"id": signer_id, "name": signer_name}, "meaning": meaning.value, "signed_at": utc_iso(signed_at),
    }))
