"""The periodic work of the service desk: SLA sweeps and notification delivery.

It runs in the web process by default (a daemon thread) and as ``incucare worker`` for scale-out; both
are safe to run side by side because sweeps and deliveries lock what they take.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from incucare.config import Settings
from incucare.services.alarms import run_alarm_round
from incucare.services.context import Clock, system_clock
from incucare.services.dispatch import auto_dispatch_waiting, expire_offers
from incucare.services.maintenance import generate_visits
from incucare.services.notifications import DeliveryReport, deliver_due, transports_from_settings
from incucare.services.parts import notify_low_stock
from incucare.services.sla_policies import quiet_calendar
from incucare.services.sla_sweeper import SweepReport, sweep
from incucare.services.telemetry_ingest import mark_offline
from incucare.services.telemetry_retention import apply_retention

log = logging.getLogger("incucare.worker")


def run_round(factory: sessionmaker[Session], settings: Settings, clock: Clock = system_clock
              ) -> tuple[SweepReport, DeliveryReport]:
    """One sweep followed by one delivery pass, both as of the clock's current time."""
    now = clock()
    report = sweep(factory, now)
    with factory() as session:
        expire_offers(session, now=now)
        if settings.auto_dispatch:
            auto_dispatch_waiting(session, now=now, accept_minutes=settings.dispatch_accept_minutes)
        notify_low_stock(session, now=now, zone=settings.zone)
        session.commit()
    with factory() as session:
        generate_visits(session, now=now, zone=settings.zone)  # preventive visits of annual agreements
        session.commit()
    with factory() as session:
        run_alarm_round(session, now=now)  # offline devices, call tree of unacknowledged critical alarms
        session.commit()
    telemetry_upkeep(factory, settings, now)
    with factory() as session:
        quiet = quiet_calendar(session, now)
    delivered = deliver_due(factory, now=clock(), transports=transports_from_settings(settings), quiet_calendar=quiet)
    return report, delivered


def telemetry_upkeep(factory: sessionmaker[Session], settings: Settings, now: datetime) -> None:
    """Twins silent for 10 minutes are flagged offline; telemetry past its retention window is deleted.

    Every round, so deletion is spread thin (each round removes what aged out since the last one; with
    nothing to delete it is three indexed look-ups).
    """
    with factory() as session:
        mark_offline(session, now=now)
        session.commit()
    report = apply_retention(factory, now=now, raw_days=settings.telemetry_raw_days,
                             agg_days=settings.telemetry_agg_days)
    if report.raw_deleted or report.minutes_deleted or report.dead_letters_deleted:
        log.info("telemetry retention: %s", report)


def run_rounds(factory: sessionmaker[Session], settings: Settings, *, interval: float, once: bool = False,
               stop: threading.Event | None = None, clock: Clock = system_clock) -> None:
    """Rounds every ``interval`` seconds until ``stop`` is set (or once)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            report, delivered = run_round(factory, settings, clock)
            if report.tickets or delivered.sent or delivered.failed:
                log.info("%s; notifications: %s", report, delivered)
        except Exception:  # the loop must survive a bad round (database restart, SMTP down)
            log.exception("background round failed")
        if once:
            return
        stop.wait(interval)


class BackgroundWorker:
    """The in-process worker thread started and stopped with the web app."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings, clock: Clock) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_rounds, name="incucare-sla", daemon=True,
            kwargs={"factory": factory, "settings": settings, "interval": settings.sweep_interval_s,
                    "stop": self._stop, "clock": clock},
        )

    def start(self) -> None:
        """Begin sweeping in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the current round and end."""
        self._stop.set()
        self._thread.join(timeout=30)
