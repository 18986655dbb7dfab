"""Electronic signatures (issue 7): who signed which record revision, with what meaning, when; and the
head of the audit hash chain.

A record (work report, calibration, quality-claim approval) is signed per revision: the revision keeps a
snapshot of the signed content and its hash, so an old revision and its signatures survive a later,
separately signed revision. While the newest revision of a record is signed, the record cannot change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from incucare.adapters.db.tables import Base


class AuditChainHead(Base):
    """The one row that points at the last sealed audit record.

    Sealing locks it (``SELECT … FOR UPDATE``), so concurrent commits append one after the other and the
    chain cannot fork; verification compares it with the last record, so deleting the newest records is
    detected too.
    """

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime | None]


class RecordRevision(Base):
    """One revision of a signable record: the content that was signed (snapshot and hash), or a revision
    opened to change a signed record that waits for its own signature."""

    __tablename__ = "record_revisions"
    __table_args__ = (
        UniqueConstraint("record_kind", "record_id", "revision", name="uq_record_revisions_record_revision"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    record_kind: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict[str, Any] | None] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime | None]


class ElectronicSignature(Base):
    """A Part 11 electronic signature: signer, meaning, time and the hash of the signed content, bound
    together by ``manifest_hash`` (the signer's password was re-entered; it is never stored here)."""

    __tablename__ = "electronic_signatures"
    __table_args__ = (
        UniqueConstraint("revision_id", "signer_id", "meaning", name="uq_electronic_signatures_once"),
        Index("ix_electronic_signatures_record", "record_kind", "record_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("record_revisions.id"), index=True)
    record_kind: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    meaning: Mapped[str] = mapped_column(String(16))
    signer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signer_name: Mapped[str] = mapped_column(String(128))
    signer_role: Mapped[str] = mapped_column(String(32))
    signed_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(String(64))
    manifest_hash: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")


# The audit trail's sealing and capture listeners and the signed-record guard live next to the tables they
# use; importing them here (``incucare.adapters.db`` imports this module) installs them wherever the schema is.
from incucare.adapters.db import audit_trail as _audit_trail  # noqa: E402
from incucare.adapters.db import signature_guard as _signature_guard  # noqa: E402

__all__ = ["AuditChainHead", "ElectronicSignature", "RecordRevision", "_audit_trail", "_signature_guard"]
