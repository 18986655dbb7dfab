"""The one Settings class: every process (server, workers, CLI) reads INCUCARE_* variables here."""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "incucare-development-secret-change-me"


class Settings(BaseSettings):
    """Configuration from the environment; a bad value stops the process at start-up with its name."""

    model_config = SettingsConfigDict(env_prefix="INCUCARE_", env_file=".env", extra="ignore")

    database_url: str = Field(default="sqlite:///var/incucare.db", description="SQLAlchemy URL")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: str = Field(default=DEV_SECRET, min_length=16)
    production: bool = False
    timezone: str = "Asia/Shanghai"
    default_language: str = "zh"
    token_ttl_minutes: int = Field(default=12 * 60, ge=1)
    session_ttl_minutes: int = Field(default=7 * 24 * 60, ge=1)
    max_upload_mb: int = Field(default=20, ge=1)
    max_request_mb: int = Field(default=64, ge=1, description="Any request body above this gets a 413 unread")
    auto_dispatch: bool = Field(default=False, description="Offer tickets awaiting dispatch to the best engineer")
    dispatch_accept_minutes: int = Field(default=30, ge=5, le=1440, description="Time an engineer has to accept")
    log_level: str = "info"
    sweep_interval_s: float = Field(default=30.0, ge=0, description="0 disables the in-app SLA sweeper")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "incucare@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    notify_max_attempts: int = Field(default=8, ge=1, le=50)
    mail_in_host: str = Field(default="127.0.0.1", description="incucare mail-in listens here (SMTP)")
    mail_in_port: int = Field(default=2525, ge=1, le=65535)
    mail_max_mb: int = Field(default=25, ge=1, le=1024, description="Larger incoming mails are refused (554)")
    # wechat: Official Account message push (docs/wechat.md); no token = the callback answers 503
    wechat_token: SecretStr | None = Field(default=None, min_length=3, max_length=32,
                                           description="the Token entered in the Official Account server settings")
    wechat_app_id: str | None = Field(default=None, max_length=32, description="AppID (wx…), required for safe mode")
    wechat_timestamp_window_s: int = Field(default=300, ge=30, le=3600,
                                           description="older or newer signed requests are refused (replays)")
    wechat_bind_requires_serial: bool = Field(default=True,
                                              description="binding needs phone and a device serial, not phone only")
    # satisfaction surveys (docs/surveys.md): links in e-mails are absolute, so the public address is needed
    public_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s]+$",
                            description="the address customers reach incucare at (survey links in e-mails)")
    survey_ttl_days: int = Field(default=30, ge=1, le=365, description="a survey link expires after this many days")
    wechat_encoding_aes_key: SecretStr | None = Field(
        default=None, min_length=43, max_length=43,
        description="EncodingAESKey for safe/compatibility mode (needs wechat_app_id); plaintext pushes are refused")

    # telemetry ingest (docs/telemetry.md): MQTT subscriber in the app (or `incucare ingest`), retention
    mqtt_enabled: bool = Field(default=True, description="run the MQTT ingest subscriber inside the web app")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]*$", description=(
        "shared-subscription group ($share/<group>/...); empty = plain subscription; unset = 'ingest-' plus a "
        "hash of the database URL, so the workers of one installation share the load and two installations "
        "on one broker never split each other's messages"))
    mqtt_client_id: str = Field(default="", max_length=64,
                                description="stable id + session expiry = no loss across restarts; empty = per process")
    mqtt_session_expiry_s: int = Field(default=0, ge=0, le=7 * 24 * 3600)
    ingest_batch_max: int = Field(default=1000, ge=1, le=10_000, description="messages stored per transaction")
    ingest_batch_ms: int = Field(default=50, ge=1, le=10_000, description="longest wait to fill a batch")
    telemetry_raw_days: int = Field(default=30, ge=1, description="raw readings are kept this long")
    telemetry_agg_days: int = Field(default=730, ge=1, description="1-minute aggregates are kept this long")
    telemetry_http_max_kb: int = Field(default=512, ge=1, le=65_536, description="larger POST bodies get a 413")
    # demo fleet (docs/simulator.md): simulated incubators publishing while the app runs, when the demo is loaded
    demo_fleet: bool = Field(default=True, description="keep the demo fleet publishing while the app runs")
    demo_fleet_interval_s: float = Field(default=30.0, ge=1.0, le=3600.0, description="seconds between readings")

    @field_validator("wechat_encoding_aes_key")
    @classmethod
    def _wechat_aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                key = base64.b64decode(value.get_secret_value() + "=", validate=True)
            except binascii.Error as exc:
                raise ValueError("wechat_encoding_aes_key is not base64 (copy it from the console)") from exc
            if len(key) != 32:
                raise ValueError("wechat_encoding_aes_key must decode to 32 bytes")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}'") from exc
        return value

    @field_validator("default_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("zh", "en"):
            raise ValueError("default_language must be 'zh' or 'en'")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if not value.startswith(("sqlite:", "postgresql+psycopg:")):
            raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
        return value

    def check_production(self) -> None:
        """Refuse to run in production with the development secret."""
        if self.production and self.secret_key == DEV_SECRET:
            raise ValueError("INCUCARE_SECRET_KEY must be set when INCUCARE_PRODUCTION=true")

    @property
    def ingest_group(self) -> str:
        """The shared-subscription group of this installation's ingest workers (see ``mqtt_group``)."""
        if self.mqtt_group is not None:
            return self.mqtt_group
        return "ingest-" + hashlib.sha256(self.database_url.encode()).hexdigest()[:10]

    @property
    def zone(self) -> ZoneInfo:
        """The service organisation's local time zone (calendars, ticket-number years, pages)."""
        return ZoneInfo(self.timezone)

    def sqlite_path(self) -> Path | None:
        """The file behind a sqlite URL, so the CLI can create its folder; None for other databases."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url.removeprefix(prefix))
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process."""
    settings = Settings()
    settings.check_production()
    return settings
