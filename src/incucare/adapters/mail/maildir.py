"""Reading a Maildir (the folder layout most mail servers and ``fetchmail``/``getmail`` deliver into).

``pending`` lists the messages not yet seen, oldest first; ``mark_seen`` moves one to ``cur`` with the
``S`` (seen) flag, the standard way of saying "handled" that every mail client understands. The import
marks a message only after it was stored, so a crash in between means it is read again next time, and
the intake's idempotency (Message-ID) makes that harmless.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEEN = "S"


@dataclass(frozen=True)
class MaildirEntry:
    """One message file: its unique key, the folder it is in (``new`` or ``cur``) and its flags."""

    key: str
    subdir: str
    filename: str
    flags: str

    @property
    def seen(self) -> bool:
        """Whether it carries the seen flag (handled by us, or read in a mail client)."""
        return SEEN in self.flags


def open_maildir(path: Path) -> mailbox.Maildir:
    """The Maildir at ``path``; ``mailbox.NoSuchMailboxError`` when it is not one."""
    box = mailbox.Maildir(path, factory=None, create=False)
    for sub in ("new", "cur", "tmp"):
        if not (path / sub).is_dir():
            raise mailbox.NoSuchMailboxError(f"{path} is not a Maildir (no '{sub}' folder)")
    return box


def _entries(box: mailbox.Maildir, path: Path) -> Iterator[MaildirEntry]:
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(path / sub)):
            if name.startswith("."):
                continue
            key, _sep, info = name.partition(box.colon)
            flags = info[2:] if info.startswith("2,") else ""
            yield MaildirEntry(key=key, subdir=sub, filename=name, flags=flags)


def pending(path: Path, *, include_seen: bool = False) -> list[MaildirEntry]:
    """Messages still to import (all of them with ``include_seen``), oldest delivery first."""
    box = open_maildir(path)
    found = [e for e in _entries(box, path) if include_seen or not e.seen]
    return sorted(found, key=lambda e: e.key)


def read(path: Path, entry: MaildirEntry) -> bytes:
    """The raw bytes of one message, exactly as delivered."""
    return (path / entry.subdir / entry.filename).read_bytes()


def mark_seen(path: Path, entry: MaildirEntry) -> None:
    """Move the message to ``cur`` with the seen flag, keeping its other flags (an atomic rename)."""
    box = open_maildir(path)
    flags = "".join(sorted(set(entry.flags) | {SEEN}))
    target = path / "cur" / f"{entry.key}{box.colon}2,{flags}"
    source = path / entry.subdir / entry.filename
    if source != target:
        os.replace(source, target)
