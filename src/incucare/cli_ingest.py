"""Telemetry commands: ``incucare ingest`` (a standalone MQTT ingest worker for scale-out) and
``incucare telemetry retention`` (delete telemetry past its retention window).

Run several ``incucare ingest`` processes (on one or more hosts; ``--workers N`` starts N on this one) with
the web app's ``INCUCARE_MQTT_ENABLED=false``: their shared subscription splits the messages between them.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import signal
import threading
from typing import Annotated, Any

import typer

ingest_app = typer.Typer(help="Telemetry ingest")
telemetry_app = typer.Typer(help="Telemetry storage", no_args_is_help=True)


@ingest_app.command("ingest")
def ingest_cmd(
    host: Annotated[str | None, typer.Option(help="Default: INCUCARE_MQTT_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: INCUCARE_MQTT_PORT")] = None,
    group: Annotated[str | None, typer.Option(help="Shared-subscription group (default INCUCARE_MQTT_GROUP)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help=(
        "Worker processes on this host, one subscriber each in the shared subscription (one per core: "
        "a Python process uses one core)"))] = 1,
    stats_every: Annotated[float, typer.Option(help="Seconds between progress lines (0: none)")] = 60.0,
) -> None:
    """Subscribe to device telemetry over MQTT and store it until stopped (Ctrl-C or SIGTERM)."""
    if workers == 1:
        _serve(host, port, group, stats_every)
        return
    ctx = mp.get_context("spawn")
    children = [ctx.Process(target=_serve, args=(host, port, group, stats_every, f"worker {k + 2}/{workers}: ", k + 2),
                            name=f"incucare-ingest-{k + 2}") for k in range(workers - 1)]
    for child in children:
        child.start()
    try:
        _serve(host, port, group, stats_every, f"worker 1/{workers}: ")
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: the child stores and acknowledges what it holds, then exits
        for child in children:
            child.join(30)


def _serve(host: str | None, port: int | None, group: str | None, stats_every: float, label: str = "",
           index: int = 1) -> None:
    """One ingest worker: subscribe, store, print progress, stop cleanly on SIGTERM or Ctrl-C.

    Worker ``index`` > 1 suffixes a configured client id: two clients with one id would disconnect each other.
    """
    from incucare.adapters.db.engine import make_session_factory
    from incucare.adapters.mqtt.subscriber import broker_reachable, subscriber_from_settings
    from incucare.cli import _engine, _settings, console

    settings = _settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {}
    if host:
        overrides["mqtt_host"] = host
    if port:
        overrides["mqtt_port"] = port
    if index > 1 and settings.mqtt_client_id:
        overrides["mqtt_client_id"] = f"{settings.mqtt_client_id[:60]}-{index}"
    if overrides:
        settings = settings.model_copy(update=overrides)
    problem = broker_reachable(settings.mqtt_host, settings.mqtt_port)
    if problem:
        console.print(f"{label}MQTT broker {settings.mqtt_host}:{settings.mqtt_port} not reachable ({problem}); "
                      "waiting for it", markup=False)
    subscriber = subscriber_from_settings(make_session_factory(_engine(settings)), settings, group=group)
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    subscriber.start()
    console.print(f"{label}ingesting {subscriber.subscription} from {settings.mqtt_host}:{settings.mqtt_port} "
                  f"as {subscriber.client_id}; Ctrl-C stops", markup=False)
    try:
        while not stop.wait(stats_every if stats_every > 0 else None):
            s = subscriber.stats
            console.print(f"{label}received {s.received}, acknowledged {s.acked}, batches {s.batches}, "
                          f"failed batches {s.failures}, connected {subscriber.connected}", markup=False)
    except KeyboardInterrupt:
        pass
    finally:
        subscriber.stop()
        console.print(f"{label}ingest stopped after {subscriber.stats.acked} messages", markup=False)


@telemetry_app.command("retention")
def retention_cmd(
    now: Annotated[str | None, typer.Option(help="As of this ISO-8601 time (default: now)")] = None,
    raw_days: Annotated[int | None, typer.Option(help="Default: INCUCARE_TELEMETRY_RAW_DAYS (30)")] = None,
    agg_days: Annotated[int | None, typer.Option(help="Default: INCUCARE_TELEMETRY_AGG_DAYS (730)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON")] = False,
) -> None:
    """Delete raw readings and dead letters older than the raw window, minute aggregates older than theirs."""
    from incucare.adapters.db.engine import make_session_factory
    from incucare.cli import _engine, _parse_now, _settings, console
    from incucare.services.telemetry_retention import apply_retention

    settings = _settings()
    moment = _parse_now(now)
    raw = raw_days or settings.telemetry_raw_days
    agg = agg_days or settings.telemetry_agg_days
    if raw < 1 or agg < 1:
        console.print("[red]retention windows must be at least one day[/red]")
        raise typer.Exit(2)
    report = apply_retention(make_session_factory(_engine(settings)), now=moment, raw_days=raw, agg_days=agg)
    if as_json:
        print(json.dumps({"raw_deleted": report.raw_deleted, "minutes_deleted": report.minutes_deleted,
                          "dead_letters_deleted": report.dead_letters_deleted,
                          "raw_before": report.raw_before.isoformat(),
                          "minutes_before": report.minutes_before.isoformat()}))
    else:
        console.print(str(report), markup=False)
