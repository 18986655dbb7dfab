"""``incucare audit verify``: prove the audit trail's hash chain, or name the first record that breaks it.

Exit status 0 with a summary (records, last sequence number, head hash) when the chain holds; 1 naming
the first altered, missing, reordered or unsealed record otherwise. Keep the printed head hash somewhere
else (a ticket, an e-mail to QA): ``--anchor <hash>`` later proves the chain still passes through it, which
catches even a rewrite of every record after the tampered one.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from incucare.config import get_settings

audit_app = typer.Typer(help="Audit trail (hash chain) verification", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    anchor: Annotated[str | None, typer.Option(help="a head hash kept earlier: the chain must pass through it")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Walk the whole audit chain; exit 1 naming the first altered, missing or reordered record."""
    from incucare.adapters.db.engine import make_engine, make_session_factory
    from incucare.services.audit import verify_chain

    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            result = verify_chain(session, anchor=anchor)
    finally:
        engine.dispose()
    problem = result.first_break
    if as_json:
        typer.echo(json.dumps({
            "intact": result.intact, "records": result.records, "head_seq": result.head_seq,
            "head_hash": result.head_hash,
            "first_break": None if problem is None else {
                "kind": problem.kind, "record_id": problem.record_id, "seq": problem.seq,
                "message": problem.message, "message_zh": problem.zh},
        }, ensure_ascii=False))
    elif problem is None:
        typer.echo(f"audit chain intact: {result.records} records, last seq {result.head_seq}, "
                   f"head {result.head_hash}")
    else:
        typer.echo(f"AUDIT CHAIN BROKEN ({problem.kind}) at record {problem.record_id} (seq {problem.seq}): "
                   f"{problem.message}\n审计链校验失败:{problem.zh}")
    if problem is not None:
        raise typer.Exit(1)
