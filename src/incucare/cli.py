"""The incucare command line (Typer): serve, db, demo, import and user administration.

Every command reads the same INCUCARE_* settings as the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from incucare.cli_audit import audit_app
from incucare.cli_bench import bench_app
from incucare.cli_ingest import ingest_app, telemetry_app
from incucare.cli_mail import mail_app
from incucare.cli_simulate import simulate_app
from incucare.config import Settings, get_settings

app = typer.Typer(help="incucare: after-sales service for CO2 incubators", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema management", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data", no_args_is_help=True)
import_app = typer.Typer(help="Import the installed base", no_args_is_help=True)
users_app = typer.Typer(help="User accounts", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(import_app, name="import")
app.add_typer(users_app, name="users")
app.add_typer(mail_app)  # e-mail intake: the top-level commands mail-in and mail-import
app.add_typer(bench_app, name="bench")
app.add_typer(ingest_app)  # the top-level command ingest (standalone MQTT ingest worker)
app.add_typer(telemetry_app, name="telemetry")
app.add_typer(simulate_app, name="simulate")
app.add_typer(audit_app, name="audit")
console = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic's ValidationError names the bad variable
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return settings


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from incucare.adapters.db.engine import make_engine

    return make_engine(settings.database_url)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply Alembic migrations up to REVISION (default: the latest)."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.adapters.db.migrate import current_revision, upgrade
    from incucare.services.context import system_clock
    from incucare.services.sla_policies import ensure_presets

    settings = _settings()
    engine = _engine(settings)
    upgrade(engine, revision)
    if revision == "head":
        with make_session_factory(engine)() as session:
            added = ensure_presets(session, system_clock())
            session.commit()
        if added:
            console.print(f"loaded {added} SLA calendar and policy presets")
    console.print(f"database at revision [bold]{current_revision(engine)}[/bold] ({engine.dialect.name})")


@db_app.command("current")
def db_current() -> None:
    """Print the database's current migration revision."""
    from incucare.adapters.db.migrate import current_revision

    print(current_revision(_engine(_settings())) or "empty")


@demo_app.command("load")
def demo_load(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when data already exists")] = False,
    telemetry: Annotated[bool, typer.Option(help="Backfill the demo fleet's telemetry (docs/simulator.md)")] = True,
) -> None:
    """Load the deterministic demo installed base, users and ticket history."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.services.context import system_clock
    from incucare.services.demo import demo_present, load_demo

    settings = _settings()
    factory = make_session_factory(_engine(settings))
    if demo_present(factory):
        if if_empty:
            console.print("demo data already present; nothing to do")
            return
        console.print("[red]demo data is already loaded[/red] (use a fresh database to load it again)")
        raise typer.Exit(1)
    now = system_clock()
    summary = load_demo(factory, now=now, progress=console)
    console.print(f"[green]demo loaded:[/green] {summary}")
    if telemetry:
        from incucare.services.demo_fleet import load_demo_fleet

        load_demo_fleet(factory, now=now, say=console.print)


@import_app.command("devices")
def import_devices(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Import devices (and their customers and sites) from CSV or XLSX: all rows or none."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.adapters.db.uow import UnitOfWork
    from incucare.domain.errors import DomainError
    from incucare.services.context import SYSTEM, system_clock
    from incucare.services.imports import import_devices as run_import

    settings = _settings()
    factory = make_session_factory(_engine(settings))
    try:
        content = file.read_bytes()
        with UnitOfWork(factory) as uow:
            report = run_import(uow.session, SYSTEM, now=system_clock(), filename=file.name, content=content,
                                dry_run=dry_run)
            if report.ok and not dry_run:
                uow.commit()
    except (DomainError, OSError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        if as_json:
            print(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
        else:
            console.print(f"import refused: {message}", markup=False)
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        console.print(report.summary(), markup=False)
        for err in report.errors[:200]:
            console.print(f"  row {err.row}, column {err.field}: {err.message}", markup=False)
    raise typer.Exit(0 if report.ok else 1)


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, service_manager, hq_expert, dispatcher, agent, engineer, "
                                           "partner or customer")],
    full_name: Annotated[str, typer.Option()] = "",
    customer_id: Annotated[int | None, typer.Option()] = None,
    region_id: Annotated[int | None, typer.Option()] = None,
    service_point_id: Annotated[int | None, typer.Option()] = None,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Create a user account (the password is hashed with argon2)."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.adapters.db.uow import UnitOfWork
    from incucare.domain.errors import DomainError
    from incucare.domain.model import Role
    from incucare.services.context import SYSTEM, system_clock
    from incucare.services.users import create_user

    settings = _settings()
    try:
        role_value = Role.parse(role)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    with UnitOfWork(make_session_factory(_engine(settings))) as uow:
        try:
            user = create_user(uow.session, SYSTEM, now=system_clock(), username=username, password=password,
                               role=role_value, full_name=full_name or username, customer_id=customer_id,
                               region_id=region_id, service_point_id=service_point_id)
        except DomainError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from exc
        uow.commit()
        console.print(f"created user {user.username} ({user.role}) with id {user.id}")


sla_app = typer.Typer(help="SLA clocks and escalation", no_args_is_help=True)
app.add_typer(sla_app, name="sla")


def _parse_now(now: str | None):  # type: ignore[no-untyped-def]
    from datetime import datetime

    from incucare.services.context import system_clock

    if now is None:
        return system_clock()
    try:
        moment = datetime.fromisoformat(now)
    except ValueError as exc:
        console.print("[red]--now must be ISO-8601, e.g. 2026-12-04T09:30:00+08:00[/red]")
        raise typer.Exit(2) from exc
    if moment.tzinfo is None:
        console.print("[red]--now needs a time zone, e.g. 2026-12-04T09:30:00+08:00[/red]")
        raise typer.Exit(2)
    return moment


@sla_app.command("sweep")
def sla_sweep(now: Annotated[str | None, typer.Option(help="Sweep as of this ISO-8601 time (default: now)")] = None,
              deliver: Annotated[bool, typer.Option(help="Also deliver due notifications")] = True) -> None:
    """Run exactly one SLA sweep: warnings, breaches, timed escalations, expired hand-offs."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.services.notifications import deliver_due, transports_from_settings
    from incucare.services.sla_policies import quiet_calendar
    from incucare.services.sla_sweeper import sweep

    settings = _settings()
    moment = _parse_now(now)
    factory = make_session_factory(_engine(settings))
    report = sweep(factory, moment)
    console.print(str(report), markup=False)
    if deliver:
        with factory() as session:
            quiet = quiet_calendar(session, moment)
        delivered = deliver_due(factory, now=moment, transports=transports_from_settings(settings),
                                quiet_calendar=quiet)
        console.print(f"notifications: {delivered}", markup=False)
    if report.errors:
        raise typer.Exit(1)


@sla_app.command("refresh")
def sla_refresh(now: Annotated[str | None, typer.Option(help="As of this ISO-8601 time (default: now)")] = None,
                ) -> None:
    """Recompute and store the clocks of every open ticket (after an upgrade or a bulk import)."""
    from sqlalchemy import select

    from incucare.adapters.db.engine import make_session_factory
    from incucare.adapters.db.tables import Ticket
    from incucare.domain.model import OPEN_STATUSES
    from incucare.services import sla
    from incucare.services.sla_policies import CalendarCache

    settings = _settings()
    moment = _parse_now(now)
    factory = make_session_factory(_engine(settings))
    cache = CalendarCache()
    with factory() as session:
        ids = list(session.scalars(select(Ticket.id).where(Ticket.status.in_([s.value for s in OPEN_STATUSES]))))
    for start in range(0, len(ids), 500):
        with factory() as session:
            for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(ids[start:start + 500]))):
                sla.refresh(session, ticket, moment, cache)
            session.commit()
    console.print(f"refreshed the clocks of {len(ids)} open tickets", markup=False)


plan_app = typer.Typer(help="Daily route planning", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@plan_app.command("routes")
def plan_routes_cmd(
    region: Annotated[str, typer.Option(help="Region code, e.g. central")],
    day: Annotated[str, typer.Option("--date", help="The day to plan, YYYY-MM-DD (local time)")],
    time_limit: Annotated[float, typer.Option(help="Solver time in seconds")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON")] = False,
    save: Annotated[bool, typer.Option(help="Store it as the region's current plan")] = True,
) -> None:
    """Plan every on-site job of the day over the region's engineers (skills, tools, parts, time windows)."""
    import json
    from datetime import UTC, date, datetime

    from incucare.adapters.db.engine import make_session_factory
    from incucare.domain.errors import DomainError
    from incucare.domain.model import Role
    from incucare.services.context import Actor
    from incucare.services.route_planning import plan_routes

    try:
        when = date.fromisoformat(day)
    except ValueError:
        console.print(f"--date: '{day}' is not a date like 2026-12-07", markup=False)
        raise typer.Exit(2) from None
    factory = make_session_factory(_engine(_settings()))
    with factory() as session:
        try:
            plan = plan_routes(session, Actor(user_id=None, name="cli", role=Role.DISPATCHER), region_code=region,
                               day=when, now=datetime.now(UTC), time_limit=time_limit, save=save)
        except DomainError as exc:
            console.print(f"{exc.message} / {exc.zh}", markup=False)
            raise typer.Exit(1) from None
        session.commit()
    if as_json:
        print(json.dumps({
            "region": plan.region, "date": plan.day.isoformat(), "plan_id": plan.plan_id, "feasible": plan.feasible,
            "travel_minutes": plan.travel_minutes, "duration_minutes": plan.duration_minutes,
            "solver_seconds": plan.solver_seconds,
            "routes": [{"engineer_id": r.engineer_id, "engineer": r.engineer,
                        "stops": [{"kind": s.kind, "ticket": s.number, "place": s.place,
                                   "arrive": s.arrive.isoformat(), "leave": s.leave.isoformat()} for s in r.stops]}
                       for r in plan.routes],
            "unplanned": list(plan.unplanned)}, ensure_ascii=False, indent=1))
        return
    console.print(f"{plan.region} {plan.day}: {sum(len(r.stops) for r in plan.routes)} stops over {len(plan.routes)} "
                  f"engineers, travel {plan.travel_minutes:.0f} min, working time {plan.duration_minutes:.0f} min, "
                  f"{'feasible' if plan.feasible else 'NOT feasible'} ({plan.solver_seconds:.1f} s)", markup=False)
    for route in plan.routes:
        console.print(f"  {route.engineer}: " + " → ".join(
            f"{s.arrive:%H:%M} {s.number or s.place}" for s in route.stops), markup=False)
    for item in plan.unplanned:
        console.print(f"  unplanned {item['number']}: {item['zh']} / {item['en']}", markup=False)


@app.command("triage")
def triage_cmd(
    text: Annotated[str, typer.Argument(help="The fault report, Chinese or English")],
    serial: Annotated[str | None, typer.Option(help="Device serial: adds customer and history context")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Triage a fault report: category, tier, priority, confidence and the evidence."""
    from incucare.domain.errors import DomainError
    from incucare.domain.triage import TriageContext, triage
    from incucare.services.context import SYSTEM, system_clock

    if serial:
        from incucare.adapters.db.engine import make_session_factory
        from incucare.services.triage import triage_report

        with make_session_factory(_engine(_settings()))() as session:
            try:
                result = triage_report(session, SYSTEM, text=text, now=system_clock(), serial=serial)
            except DomainError as exc:
                console.print(exc.message, markup=False)
                raise typer.Exit(1) from exc
    else:
        from incucare.adapters.kb.taxonomy import load_taxonomy

        result = triage(text, TriageContext(), load_taxonomy())
    data = result.as_dict()
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    print(f"{data['category']} · tier {data['tier']} · {data['priority']} · confidence {data['confidence']}")
    for item in result.evidence:
        print(f"  - {item.zh} / {item.en}")


@app.command()
def worker(interval: Annotated[float, typer.Option(help="Seconds between sweeps")] = 30.0,
           once: Annotated[bool, typer.Option(help="Run one round and exit")] = False) -> None:
    """Background worker for scale-out: SLA sweeps and notification delivery in a loop."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.services.background import run_rounds

    settings = _settings()
    run_rounds(make_session_factory(_engine(settings)), settings, interval=interval, once=once)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: INCUCARE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: INCUCARE_PORT")] = None,
    reload: bool = False,
) -> None:
    """Serve the web app and API."""
    import uvicorn

    settings = _settings()
    uvicorn.run("incucare.web.asgi:app", host=host or settings.host, port=port or settings.port,
                reload=reload, log_level=settings.log_level, proxy_headers=True)


def main() -> None:
    """Entry point for ``python -m incucare``."""
    app(prog_name="incucare")


if __name__ == "__main__":
    main()
