"""``incucare simulate fleet``: publish realistic incubator telemetry over MQTT (the fleet simulator).

Real time by default (one reading per device every ``--interval`` seconds); ``--backfill`` first publishes the
last hours as fast as the broker takes them; ``--speed`` runs simulated time faster than the wall clock;
``--fast`` with ``--duration`` publishes a whole simulated span without waiting (benchmarks, fixtures).
Faults are injected per serial: ``--fault SERIAL:KIND[:START_OFFSET[:PARAM]]``, e.g.
``--fault SN001:co2_leak:-2d:10`` (a leak that started two days ago and fails in ten days).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

import typer
from rich.console import Console

from incucare.domain.fleet_sim import Fault, FaultKind, FleetSimulator, fleet_profiles
from incucare.domain.telemetry import Reading

simulate_app = typer.Typer(help="Simulators for the demo, tests and benchmarks", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

_SPAN = re.compile(r"^([+-]?\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_span(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``-3d`` (plain numbers are seconds) as a timedelta; ValueError otherwise."""
    match = _SPAN.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a duration like 90s, 15m, 2h or 3d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_fault(text: str, *, start: datetime) -> tuple[str, Fault]:
    """``SERIAL:KIND[:OFFSET[:PARAM]]``: OFFSET from the simulation start (default 0); PARAM is days to
    failure (leak, heater ageing, gasket wear), % per day (sensor drift) or a duration (door, power)."""
    parts = text.split(":")
    if len(parts) < 2 or not parts[0]:
        raise ValueError(f"'{text}': expected SERIAL:KIND[:OFFSET[:PARAM]]")
    serial, kind = parts[0], FaultKind.parse(parts[1])
    at = start + (parse_span(parts[2]) if len(parts) > 2 and parts[2] else timedelta(0))
    param = parts[3] if len(parts) > 3 and parts[3] else None
    if param is None:
        return serial, Fault(kind, at)
    if kind in (FaultKind.DOOR_LEFT_OPEN, FaultKind.POWER_LOSS):
        return serial, Fault(kind, at, duration=parse_span(param))
    if kind is FaultKind.CO2_SENSOR_DRIFT:
        return serial, Fault(kind, at, drift_pct_per_day=float(param))
    return serial, Fault(kind, at, days_to_failure=float(param))


@dataclass
class RunStats:
    """What a run published."""

    readings: int = 0
    messages: int = 0


class Sink(Protocol):
    """Where readings go (the MQTT publisher; tests may pass another real sink)."""

    def publish_readings(self, readings: Sequence[Reading], *, per_message: int = 1) -> int: ...

    def flush(self, timeout_s: float = 30.0) -> None: ...


def run_fleet(sim: FleetSimulator, publisher: Sink, *, end: datetime | None, speed: float, fast: bool,
              wall: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
              real_now: Callable[[], datetime] = lambda: datetime.now(UTC),
              on_progress: Callable[[RunStats, datetime], None] | None = None) -> RunStats:
    """Drive the simulator: catch up to the present (backfill) at once, then pace simulated time at ``speed``
    times the wall clock until ``end`` (None: until interrupted). ``fast`` skips all waiting."""
    stats = RunStats()

    def emit(until: datetime, per_message: int) -> None:
        readings = sim.advance(until)
        if readings:
            stats.messages += publisher.publish_readings(readings, per_message=per_message)
            stats.readings += len(readings)
            publisher.flush()
        if on_progress:
            on_progress(stats, until)

    step = timedelta(seconds=sim.interval_s)
    if fast:
        if end is None:
            raise ValueError("--fast needs --duration")
        cursor = sim.start
        while cursor < end:
            cursor = min(cursor + timedelta(hours=1), end)
            emit(cursor, 60)
        return stats
    present = real_now()
    cursor = sim.start
    while cursor < present and (end is None or cursor < end):  # backfill: the past goes out at once
        cursor = min(cursor + timedelta(hours=1), present, end or present)
        emit(cursor, 60)
    t0, sim0 = wall(), cursor
    while end is None or cursor < end:
        cursor = cursor + step
        if end is not None:
            cursor = min(cursor, end)
        wait = (cursor - sim0).total_seconds() / speed - (wall() - t0)
        if wait > 0:
            sleep(wait)
        emit(cursor, 1)
    return stats


@simulate_app.command("fleet")
def simulate_fleet(
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, max=100000, help="how many devices")] = 10,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between two readings of a device")] = 60.0,
    serials: Annotated[str | None, typer.Option(help="comma-separated serials (default: from the database, "
                                                     "else SIM-00001...)")] = None,
    fault: Annotated[list[str] | None, typer.Option(help="SERIAL:KIND[:OFFSET[:PARAM]], repeatable; kinds: "
                                                         + ", ".join(k.value for k in FaultKind))] = None,
    start: Annotated[str | None, typer.Option(help="simulation start, ISO-8601 (default: now minus --backfill)")
                     ] = None,
    backfill: Annotated[str, typer.Option(help="publish this much past first, e.g. 24h")] = "0",
    duration: Annotated[str | None, typer.Option(help="stop after this much simulated time, e.g. 2h")] = None,
    speed: Annotated[float, typer.Option(min=0.001, help="simulated seconds per wall-clock second")] = 1.0,
    fast: Annotated[bool, typer.Option("--fast", help="no waiting at all (needs --duration)")] = False,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same telemetry)")] = 1,
    tri_gas: Annotated[str, typer.Option(help="comma-separated serials of tri-gas models (report O2)")] = "",
    host: Annotated[str | None, typer.Option(help="MQTT broker host (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="MQTT broker port (default from settings)")] = None,
) -> None:
    """Publish simulated telemetry for a fleet over MQTT (QoS 1) to incucare/v1/devices/{serial}/telemetry."""
    from incucare.adapters.mqtt.publisher import BrokerUnreachable, TelemetryPublisher

    try:
        back = parse_span(backfill)
        length = parse_span(duration) if duration else None
        t0 = datetime.fromisoformat(start).astimezone(UTC) if start else datetime.now(UTC) - back
        faults: dict[str, list[Fault]] = {}
        for text in fault or []:
            serial, parsed = parse_fault(text, start=t0)
            faults.setdefault(serial, []).append(parsed)
    except ValueError as exc:
        console.print(f"[red]bad option:[/red] {exc}")
        raise typer.Exit(2) from exc
    if fast and length is None:
        console.print("[red]bad option:[/red] --fast needs --duration")
        raise typer.Exit(2)
    names = [s.strip() for s in serials.split(",") if s.strip()] if serials else _serials_from_db(devices)
    names = names[:devices]
    missing = sorted(set(faults) - set(names))
    if missing:
        console.print(f"[red]bad option:[/red] --fault names serials not in the fleet: {', '.join(missing)}")
        raise typer.Exit(2)
    broker_host, broker_port = _broker(host, port)
    profiles = fleet_profiles(names, seed=seed, tri_gas=[s for s in tri_gas.split(",") if s], faults=faults)
    sim = FleetSimulator(profiles, seed=seed, start=t0, interval_s=interval)
    try:
        user, password = _credentials()
        publisher = TelemetryPublisher(broker_host, broker_port, username=user, password=password).connect()
    except BrokerUnreachable as exc:
        console.print(f"[red]cannot publish:[/red] {exc}. Start Mosquitto (or set INCUCARE_MQTT_* / --host/--port).")
        raise typer.Exit(3) from exc
    console.print(f"publishing {len(names)} devices every {interval:g} s to {broker_host}:{broker_port}"
                  f" from {t0.isoformat()} (speed {speed:g}{', fast' if fast else ''})")

    def progress(stats: RunStats, until: datetime) -> None:
        if stats.messages and (fast or back or stats.messages % 1000 < len(names)):
            console.print(f"  {until.isoformat(timespec='seconds')}: {stats.readings} readings in "
                          f"{stats.messages} messages", highlight=False)

    try:
        stats = run_fleet(sim, publisher, end=t0 + length if length else None, speed=speed, fast=fast,
                          on_progress=progress)
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except BrokerUnreachable as exc:
        console.print(f"[red]broker lost:[/red] {exc}")
        raise typer.Exit(3) from exc
    finally:
        publisher.close()
    console.print(f"[green]done:[/green] {stats.readings} readings in {stats.messages} messages")


def _broker(host: str | None, port: int | None) -> tuple[str, int]:
    from incucare.config import get_settings

    settings = get_settings()
    return host or settings.mqtt_host, port or settings.mqtt_port


def _credentials() -> tuple[str | None, str | None]:
    from incucare.config import get_settings

    settings = get_settings()
    return settings.mqtt_username, settings.mqtt_password.get_secret_value() if settings.mqtt_password else None


def _serials_from_db(count: int) -> list[str]:
    """The first in-service devices of the configured database (the demo's, after ``demo load``)."""
    try:
        from incucare.adapters.db.engine import make_engine, make_session_factory
        from incucare.config import get_settings
        from incucare.services.demo_fleet import fleet

        factory = make_session_factory(make_engine(get_settings().database_url))
        with factory() as session:
            found = [d.profile.serial for d in fleet(session, anchor=datetime.now(UTC), size=count)]
    except Exception as exc:  # no database yet: synthetic serials still exercise the broker
        console.print(f"[yellow]no device serials from the database ({type(exc).__name__}); using SIM-…[/yellow]")
        found = []
    if not found:
        console.print("[yellow]no devices in the database: publishing SIM-00001...; ingest will dead-letter "
                      "unknown serials[/yellow]")
        return [f"SIM-{i:05d}" for i in range(1, count + 1)]
    return found
