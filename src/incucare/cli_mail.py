"""E-mail intake commands: ``incucare mail-in`` (an SMTP listener) and ``incucare mail-import`` (a Maildir).

Both file each mail in its own transaction through ``services.mail_intake.ingest_mail``; see
docs/email-intake.md for pointing a mail server or a forwarding rule at them.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from incucare.config import Settings
from incucare.services.context import Clock, system_clock

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from sqlalchemy.orm import Session, sessionmaker

    from incucare.services.mail_intake import MailResult

mail_app = typer.Typer(help="E-mail intake")


def summary(result: MailResult) -> str:
    """One line per mail for the SMTP reply and the log: record id, outcome and ticket number."""
    parts = [f"#{result.message_id}", result.status if result.created else f"{result.status} (already received)"]
    if result.ticket_number:
        parts.append(result.ticket_number)
    return " ".join(parts)


def make_ingest(session_factory: sessionmaker[Session], settings: Settings,
                clock: Clock = system_clock) -> Callable[[bytes], MailResult]:
    """``raw bytes → MailResult`` bound to a database, our own addresses (loop guard) and a clock."""
    from incucare.services.mail_intake import ingest_mail, own_addresses

    own = own_addresses(settings)

    def ingest(raw: bytes) -> MailResult:
        return ingest_mail(session_factory, raw, now=clock(), own=own)

    return ingest


def build_listener(session_factory: sessionmaker[Session], settings: Settings, *, host: str | None = None,
                   port: int | None = None, clock: Clock = system_clock) -> Controller:
    """The SMTP listener of ``mail-in`` (not started), filing into ``session_factory``'s database."""
    from incucare.adapters.mail.smtp_in import make_controller

    ingest = make_ingest(session_factory, settings, clock)
    return make_controller(lambda raw: summary(ingest(raw)), host=host or settings.mail_in_host,
                           port=port or settings.mail_in_port, max_bytes=settings.mail_max_mb * 1024 * 1024)


@mail_app.command("mail-in")
def mail_in(
    host: Annotated[str | None, typer.Option(help="Default: INCUCARE_MAIL_IN_HOST (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Default: INCUCARE_MAIL_IN_PORT (2525)")] = None,
) -> None:
    """Receive e-mail over SMTP and file every mail (250 only once stored; 451 on a database error)."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.cli import _engine, _settings, console

    settings = _settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.log_level.lower() != "debug":  # aiosmtpd logs every SMTP command at INFO
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = build_listener(make_session_factory(_engine(settings)), settings, host=host, port=port)
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    controller.start()
    console.print(f"mail-in listening on {controller.hostname}:{controller.port} "
                  f"(mails over {settings.mail_max_mb} MB refused); Ctrl-C stops", markup=False)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        console.print("mail-in stopped", markup=False)


@mail_app.command("mail-import")
def mail_import(
    maildir: Annotated[Path, typer.Option("--maildir", exists=True, file_okay=False, help="The Maildir folder")],
    include_seen: Annotated[bool, typer.Option("--all", help="Also re-read messages already flagged seen")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON")] = False,
) -> None:
    """File every unseen message of a Maildir, then move it to cur/ with the seen flag (safe to run again)."""
    import mailbox

    from rich.progress import track

    from incucare.adapters.db.engine import make_session_factory
    from incucare.adapters.mail.maildir import mark_seen, pending, read
    from incucare.cli import _engine, _settings, console

    settings = _settings()
    try:
        entries = pending(maildir, include_seen=include_seen)
    except mailbox.NoSuchMailboxError as exc:
        console.print(f"not a Maildir: {exc}", markup=False)
        raise typer.Exit(2) from exc
    ingest = make_ingest(make_session_factory(_engine(settings)), settings)
    limit = settings.mail_max_mb * 1024 * 1024
    counts: Counter[str] = Counter()
    for entry in track(entries, description="importing mail", console=console, disable=as_json):
        raw = read(maildir, entry)
        if len(raw) > limit:
            counts["too_large"] += 1
            console.print(f"left in place, over {settings.mail_max_mb} MB: {entry.subdir}/{entry.filename}",
                          markup=False)
            continue
        result = ingest(raw)
        counts[result.status if result.created else "already_received"] += 1
        mark_seen(maildir, entry)
    report = {"messages": len(entries), **dict(sorted(counts.items()))}
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        console.print(", ".join(f"{key}: {value}" for key, value in report.items()), markup=False)
    raise typer.Exit(1 if counts["too_large"] else 0)
