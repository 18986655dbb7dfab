"""The hash chain of the audit trail (21 CFR Part 11 / EU GMP Annex 11 spirit): pure hashing and verification.

Every audit record is sealed when its transaction commits: it gets the next sequence number, the hash of
the record sealed before it (``prev_hash``) and its own ``hash``, the SHA-256 of its canonical content
plus ``prev_hash``. Canonical content is JSON with sorted keys, no whitespace, UTF-8 text, times in UTC ISO
8601 with microseconds. Changing any field of a sealed record changes its hash; removing one leaves a gap
in the sequence and a broken link; moving one breaks the links around it. ``ChainVerifier`` walks the
records in sequence order and names the FIRST record where the chain does not hold.

What the chain cannot prove on its own: someone able to rewrite every record after the altered one (and
the chain head) can forge a consistent chain. Printing the head hash (``incucare audit verify``) and keeping
it elsewhere turns that into detectable tampering too (``--anchor``: the chain must pass through it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record of the chain."""
_SCALARS = frozenset({str, int, float, bool, type(None)})


def utc_iso(moment: datetime) -> str:
    """A time as canonical text: UTC, microseconds, ``Z`` suffix (naive times are refused)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime in an audit record")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so the same content always gives the same bytes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(text: str) -> str:
    """The SHA-256 of UTF-8 text, as 64 hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plain(value: Any) -> Any:
    """A value as JSON sees it (datetimes and dates as ISO text, tuples as lists, keys as text), so what is
    hashed is exactly what the database gives back."""
    kind = type(value)
    if kind in _SCALARS:  # the common case first: JSON read back from the database
        return value
    if kind is dict:
        return {str(k): plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return utc_iso(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=canonical_json) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return {"sha256": hashlib.sha256(value).hexdigest(), "bytes": len(value)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return str(iso())
    return str(value)


@dataclass(frozen=True)
class Entry:
    """One audit record as the chain sees it (the database row, without storage concerns)."""

    record_id: int
    seq: int | None
    at: datetime
    actor_id: int | None
    actor_name: str
    entity: str
    entity_id: str
    action: str
    changes: Mapping[str, Any]
    reason: str
    prev_hash: str | None = None
    hash: str | None = None

    def content(self) -> dict[str, Any]:
        """What the hash covers besides the previous hash: every field a reader relies on."""
        return {
            "id": self.record_id, "at": utc_iso(self.at), "actor_id": self.actor_id, "actor_name": self.actor_name,
            "entity": self.entity, "entity_id": self.entity_id, "action": self.action,
            "changes": plain(self.changes), "reason": self.reason,
        }


def entry_hash(entry: Entry, prev_hash: str) -> str:
    """The hash of a record chained after ``prev_hash``."""
    return sha256_hex(canonical_json({"prev": prev_hash, "record": entry.content()}))


@dataclass(frozen=True)
class Sealed:
    """The chain fields given to a record when it is sealed."""

    seq: int
    prev_hash: str
    hash: str


def seal(entries: list[Entry], head_seq: int, head_hash: str) -> list[Sealed]:
    """Chain ``entries`` (in the order given) after the head; returns their sequence numbers and hashes."""
    out: list[Sealed] = []
    seq, prev = head_seq, head_hash
    for entry in entries:
        seq += 1
        digest = entry_hash(entry, prev)
        out.append(Sealed(seq, prev, digest))
        prev = digest
    return out


@dataclass(frozen=True)
class Break:
    """Where the chain first fails: the kind of damage, the record that shows it, and what to tell people."""

    kind: str
    """``altered`` | ``missing`` | ``reordered`` | ``unsealed`` | ``truncated`` | ``head``"""
    record_id: int | None
    seq: int | None
    message: str
    zh: str


@dataclass(frozen=True)
class Verification:
    """The result of walking the chain: how many records, the last hash, and the first break if any."""

    records: int
    head_seq: int
    head_hash: str
    first_break: Break | None

    @property
    def intact(self) -> bool:
        """True when every record holds and the chain ends where its head says."""
        return self.first_break is None


class ChainVerifier:
    """Walks records in sequence order (streaming) and keeps the first break it finds.

    Feed records ordered by ``seq`` with unsealed ones (``seq`` None) last, then call ``finish`` with the
    chain head the database holds (or None when it has none).
    """

    def __init__(self, anchor: str | None = None) -> None:
        self.anchor = anchor
        self.anchor_seen = anchor is None
        self.count = 0
        self.expected_seq = 1
        self.prev_hash = GENESIS
        self.prev_id: int | None = None
        self.first_break: Break | None = None

    def feed(self, entry: Entry) -> None:
        """Check one record against the one before it."""
        self.count += 1
        if self.first_break is not None:
            return
        self.first_break = self._check(entry)
        if self.first_break is None and entry.hash == self.anchor:
            self.anchor_seen = True
        if entry.hash is not None and entry.seq is not None:
            self.expected_seq = entry.seq + 1
            self.prev_hash = entry.hash
            self.prev_id = entry.record_id

    def _check(self, e: Entry) -> Break | None:
        rid = e.record_id
        if e.seq is None or e.hash is None or e.prev_hash is None:
            return Break("unsealed", rid, e.seq, f"audit record {rid} is not sealed in the chain (written outside "
                         "the application?)", f"审计记录 {rid} 未加入哈希链(可能是绕过系统写入的)")
        if e.seq > self.expected_seq:
            gap = (f"seq {self.expected_seq}" if e.seq == self.expected_seq + 1
                   else f"seq {self.expected_seq}–{e.seq - 1}")
            return Break("missing", rid, e.seq, f"audit record(s) {gap} missing before record {rid} (seq {e.seq}): "
                         "deleted", f"审计记录 {gap} 缺失(位于记录 {rid} 之前):已被删除")
        if e.seq < self.expected_seq:
            return Break("reordered", rid, e.seq, f"audit record {rid} has seq {e.seq}, expected {self.expected_seq}",
                         f"审计记录 {rid} 的序号为 {e.seq},应为 {self.expected_seq}")
        if entry_hash(e, e.prev_hash) != e.hash:
            return Break("altered", rid, e.seq, f"audit record {rid} (seq {e.seq}) was altered: its content no "
                         "longer matches its hash", f"审计记录 {rid}(序号 {e.seq})已被篡改:内容与哈希不符")
        if e.prev_hash != self.prev_hash:
            before = f"record {self.prev_id}" if self.prev_id is not None else "the start of the chain"
            return Break("reordered", rid, e.seq, f"audit record {rid} (seq {e.seq}) does not follow {before}: "
                         "records were reordered, or the one before was rewritten",
                         f"审计记录 {rid}(序号 {e.seq})与前一条记录链接断开:记录顺序被改动或前一条被改写")
        return None

    def finish(self, head_seq: int | None, head_hash: str | None) -> Verification:
        """The verdict, once every record has been fed: the head must point at the last record."""
        last_seq, last_hash = self.expected_seq - 1, self.prev_hash
        problem = self.first_break
        if problem is None and head_seq is not None and (head_seq, head_hash) != (last_seq, last_hash):
            if head_seq > last_seq:
                problem = Break("truncated", None, last_seq + 1,
                                f"the chain head says seq {head_seq} but the last record is seq {last_seq}: "
                                f"records seq {last_seq + 1}–{head_seq} were deleted",
                                f"链头记录为序号 {head_seq},但最后一条审计记录为序号 {last_seq}:其后的记录已被删除")
            else:
                problem = Break("head", self.prev_id, last_seq,
                                f"the chain head (seq {head_seq}) does not match the last record (seq {last_seq})",
                                f"链头(序号 {head_seq})与最后一条审计记录(序号 {last_seq})不符")
        if problem is None and not self.anchor_seen:
            anchor = (self.anchor or "")[:16]
            problem = Break("head", None, None,
                            f"no record of the chain has the anchored hash {anchor}…: the chain was rewritten",
                            f"哈希链中找不到锚定的哈希 {anchor}…:审计链已被改写")
        return Verification(records=self.count, head_seq=last_seq, head_hash=last_hash, first_break=problem)


def verify(entries: list[Entry], head_seq: int | None = None, head_hash: str | None = None) -> Verification:
    """Verify a whole chain held in memory (see ``ChainVerifier`` for streaming)."""
    verifier = ChainVerifier()
    for entry in entries:
        verifier.feed(entry)
    return verifier.finish(head_seq, head_hash)
