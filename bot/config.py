"""Configuration from the environment (and an optional `.env` file), as ARCHITECTURE.md fixes it."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.clock import DEFAULT_TZ

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///yizhan.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    default_tz: str = DEFAULT_TZ
    admin_ids: Annotated[tuple[int, ...], NoDecode] = ()
    broadcast_rate: float = 25.0
    #: Different people reporting a station closed within 24 hours before it is hidden automatically.
    auto_hide_reports: int = 3
    #: Stations whose details a bot or web process keeps in memory (about 0.6 KB each); 0 turns it off.
    station_cache_size: int = 250_000
    log_format: str = "auto"
    #: One log line per HTTP request. Off by default: the reverse proxy in front (deploy/nginx.conf) keeps
    #: the access log, and formatting a line costs as much as answering a small request.
    access_log: bool = False
    #: Leaflet tile template for the H5 page's map (`{z}/{x}/{y}`); OpenStreetMap's standard tiles when unset.
    map_tile_url: str | None = None
    #: Days a report's comment and photo are kept; the retention job empties them afterwards.
    report_retention_days: int = 180

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(value, int):
            return (value,)
        return value

    @field_validator("default_tz")
    @classmethod
    def _known_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("auto", "json", "text"):
            raise ValueError("LOG_FORMAT must be auto, json or text")
        return value

    @field_validator("report_retention_days")
    @classmethod
    def _positive_days(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("REPORT_RETENTION_DAYS must be positive")
        return value

    @field_validator("broadcast_rate")
    @classmethod
    def _positive_rate(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("BROADCAST_RATE must be positive")
        return value
