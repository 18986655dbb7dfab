"""The FastAPI application factory: wires settings, storage, clock and routers together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from starlette.middleware.sessions import SessionMiddleware

from incucare import __version__
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.mqtt.subscriber import start_in_app_ingest
from incucare.config import Settings, get_settings
from incucare.services import demo_fleet
from incucare.services.auth import TokenSigner
from incucare.services.background import BackgroundWorker
from incucare.services.context import Clock, system_clock
from incucare.services.sla_policies import ensure_presets
from incucare.web.api import audit as audit_api
from incucare.web.api import auth as auth_api
from incucare.web.api import dashboards as dashboards_api
from incucare.web.api import dispatch as dispatch_api
from incucare.web.api import fieldwork as fieldwork_api
from incucare.web.api import hq as hq_api
from incucare.web.api import imports as imports_api
from incucare.web.api import installed_base as ib_api
from incucare.web.api import intake as intake_api
from incucare.web.api import kb as kb_api
from incucare.web.api import kpis as kpis_api
from incucare.web.api import maintenance as maintenance_api
from incucare.web.api import notifications as notifications_api
from incucare.web.api import parts as parts_api
from incucare.web.api import reports as reports_api
from incucare.web.api import self_service as self_service_api
from incucare.web.api import signatures as signatures_api
from incucare.web.api import sla_admin as sla_admin_api
from incucare.web.api import surveys as surveys_api
from incucare.web.api import taxonomy as taxonomy_api
from incucare.web.api import telemetry as telemetry_api
from incucare.web.api import tickets as tickets_api
from incucare.web.api import triage as triage_api
from incucare.web.api import users as users_api
from incucare.web.api import wechat as wechat_api
from incucare.web.body_limit import BodySizeLimit
from incucare.web.errors import install_error_handlers
from incucare.web.vendor_assets import vendor_assets_dir

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               clock: Clock = system_clock) -> FastAPI:
    """Build the app; tests pass their own engine and clock."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    factory = make_session_factory(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with factory() as session:  # presets are data: make sure they exist before the first ticket
            ensure_presets(session, clock())
            session.commit()
        worker = BackgroundWorker(factory, settings, clock) if settings.sweep_interval_s > 0 else None
        if worker is not None:
            worker.start()
        ingest = start_in_app_ingest(factory, settings, clock) if settings.mqtt_enabled else None
        fleet = demo_fleet.start_if_demo(factory, settings, clock)  # None unless the demo is loaded
        try:
            yield
        finally:
            if fleet is not None:
                fleet.stop()
            if ingest is not None:
                ingest.stop()
            if worker is not None:
                worker.stop()

    app = FastAPI(
        title="incucare",
        version=__version__,
        description="After-sales service platform for CO2 incubators: three-tier response with SLAs.",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = factory
    app.state.clock = clock
    app.state.tokens = TokenSigner(settings.secret_key, settings.token_ttl_minutes * 60)

    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_mb * 1024 * 1024)
    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="incucare_session",
                       max_age=settings.session_ttl_minutes * 60, same_site="lax",
                       https_only=settings.production)
    app.mount("/static/vendor", StaticFiles(directory=vendor_assets_dir()), name="vendor")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness and database reachability, for load balancers."""
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": engine.dialect.name}

    app.include_router(auth_api.router)
    app.include_router(ib_api.router)
    app.include_router(imports_api.router)
    app.include_router(notifications_api.router)
    app.include_router(tickets_api.router)
    app.include_router(dispatch_api.router)
    app.include_router(fieldwork_api.router)
    app.include_router(sla_admin_api.router)
    app.include_router(triage_api.router)
    app.include_router(kb_api.router)
    app.include_router(intake_api.router)
    app.include_router(self_service_api.router)
    app.include_router(taxonomy_api.router)
    app.include_router(users_api.router)
    app.include_router(wechat_api.router)
    app.include_router(parts_api.router)
    app.include_router(hq_api.router)
    app.include_router(audit_api.router)
    app.include_router(signatures_api.router)
    app.include_router(telemetry_api.router)
    app.include_router(reports_api.router)
    app.include_router(dashboards_api.router)
    app.include_router(kpis_api.router)
    app.include_router(surveys_api.router)
    app.include_router(maintenance_api.router)
    from incucare.web.api import findings as findings_api
    from incucare.web.pages import findings as findings_pages

    app.include_router(findings_api.router)
    app.include_router(findings_pages.router)

    from incucare.web.pages import audit as audit_pages
    from incucare.web.pages import dashboards as dashboard_pages
    from incucare.web.pages import fieldwork as fieldwork_pages
    from incucare.web.pages import hq as hq_pages
    from incucare.web.pages import intake as intake_pages
    from incucare.web.pages import kpi_drill as kpi_pages
    from incucare.web.pages import parts as parts_pages
    from incucare.web.pages import routes as pages
    from incucare.web.pages import self_service as self_service_pages
    from incucare.web.pages import sla_settings, taxonomy_editor

    app.include_router(pages.router)
    from incucare.web.api import alarms as alarms_api
    from incucare.web.pages import alarms as alarm_pages

    app.include_router(alarms_api.router)
    app.include_router(alarm_pages.router)
    app.include_router(self_service_pages.router)
    app.include_router(sla_settings.router)
    app.include_router(intake_pages.router)
    app.include_router(taxonomy_editor.router)
    app.include_router(hq_pages.router)
    app.include_router(fieldwork_pages.router)
    app.include_router(parts_pages.router)
    app.include_router(audit_pages.router)
    from incucare.web.pages import maintenance as maintenance_pages
    from incucare.web.pages import surveys as survey_pages

    app.include_router(survey_pages.router)
    app.include_router(maintenance_pages.router)
    app.include_router(dashboard_pages.router)
    app.include_router(kpi_pages.router)
    from incucare.web.pages import monitoring as monitoring_pages

    app.include_router(monitoring_pages.router)
    return app
