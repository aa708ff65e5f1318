"""Configuration from the environment (and an optional `.env` file): the README's configuration table."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.clock import DEFAULT_TZ
from domain.demand import BAND_EDGES_M

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
    #: Weighted evidence that hides a station reported closed: the sum, over the last 24 hours, of the
    #: weights of on-site closure reports by trusted reporters (a trusted rider weighs 1).
    auto_hide_reports: float = 3.0
    #: A closure report is evidence only with a location message this close to the station (metres)…
    report_on_site_m: float = 300.0
    #: …sent at most this many minutes before the report.
    report_location_max_age_min: float = 30.0
    #: Accounts first seen less recently than this (hours), or that never searched, weigh nothing.
    reporter_min_age_h: float = 24.0
    #: Weight of a volunteer's (or staff member's) report; a rider's is 1.
    volunteer_weight: float = 1.5
    #: Each case of theirs staff approve adds this to a reporter's weight, each rejected one subtracts
    #: the next; the weight stays between 0 and `reporter_max_weight`.
    reporter_approval_bonus: float = 0.25
    reporter_rejection_penalty: float = 0.5
    reporter_max_weight: float = 2.0
    #: Reporters of an automatic hiding that staff reject weigh nothing for this many days.
    reporter_suspension_days: float = 30.0
    #: Closure reports, and reports of any kind, one person may send in 24 hours (all stations together).
    report_daily_closures: int = 5
    report_daily_limit: int = 20
    #: What an on-site closure report from the H5 page weighs toward hiding a station (0: nothing).
    web_report_weight: float = 0.0
    #: Reports per hour one client address may send from the H5 page, and at once (GCRA; 0: no limit).
    web_report_rate: float = 6.0
    web_report_burst: int = 3
    #: The circuit breaker: stations of one region (the first `auto_hide_region_digits` digits of the
    #: adcode, 4 = a city) hidden automatically within an hour before automatic hiding pauses there for
    #: `auto_hide_pause_h` hours and the region's staff are alerted.
    auto_hide_region_digits: int = 4
    auto_hide_region_per_hour: int = 5
    auto_hide_pause_h: float = 24.0
    #: Stations whose details a bot or web process keeps in memory (about 0.6 KB each); 0 turns it off.
    station_cache_size: int = 250_000
    log_format: str = "auto"
    #: One log line per HTTP request. Off by default: the reverse proxy in front (deploy/nginx.conf) keeps
    #: the access log, and formatting a line costs as much as answering a small request.
    access_log: bool = False
    #: Leaflet tile template for the H5 page's map (`{z}/{x}/{y}`); OpenStreetMap's standard tiles when unset.
    map_tile_url: str | None = None
    #: The map's tile provider by name (bot/web/tiles.py): `osm`, `amap` (GCJ-02, loads in China) or
    #: `tianditu` (needs `tianditu_key`). `map_tile_url` replaces the provider's template, keeping its datum.
    map_tiles: Literal["osm", "amap", "tianditu"] = "osm"
    tianditu_key: str | None = None
    #: Days a report's comment and photo are kept; the retention job empties them afterwards.
    report_retention_days: int = 180
    #: Station imports: what one file may hold at most, checked before it is parsed (see ImportLimits).
    import_max_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    import_max_rows: int = Field(default=1_000_000, gt=0)
    import_max_line: int = Field(default=100_000, gt=0)
    import_max_xlsx_uncompressed: int = Field(default=1024 * 1024 * 1024, gt=0)
    import_max_zip_ratio: int = Field(default=200, gt=0)
    #: Where the console keeps an uploaded station file between its dry run and its commit (a directory
    #: every web replica shares, or sticky sessions); the system's temporary directory when unset.
    console_import_dir: Path | None = None
    #: Minutes a checked file waits for its commit before the clerk must upload it again.
    console_import_ttl_min: int = Field(default=60, gt=0)
    #: Where the administrative-region index is cached (built from the boundary package on first use);
    #: the user's cache directory when unset.
    region_cache_dir: Path | None = None
    #: Public HTTP requests one process handles at once; more are refused at once with a 503 (never queued).
    http_max_in_flight: int = 64
    #: Telegram updates (webhook mode) one process handles at once: a budget of their own, out of the
    #: public API's reach.
    bot_max_in_flight: int = 64
    #: Seconds a client has to send a request's headers (on a new connection, or after the previous answer
    #: on a kept-alive one) before the connection is closed.
    http_header_timeout: float = 10.0
    #: Seconds a request waits for a pooled database connection before it is refused with a 503.
    db_pool_timeout: float = 1.0
    #: Seconds a client has to send a request's body (POST) once its headers arrived; then a 408.
    http_body_timeout: float = 10.0
    #: Seconds a rendered sync page (`GET /api/v1/stations`) is reused while this process knows of no
    #: change; bounds how long a change by another process that does not announce it (no Redis) stays
    #: unseen. 0 turns the cache off.
    sync_cache_seconds: float = 60.0
    #: Requests per second one client may make to the public API (GCRA; a burst of API_RATE_BURST);
    #: 0 turns the limit off.
    api_rate_limit: float = 20.0
    api_rate_burst: int = 40
    #: Comma-separated addresses or CIDRs of the reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    #: Seconds between two writes of the station usage counts (card views, navigation and call taps) a
    #: process holds in memory: what a crash may lose at most.
    evaluation_flush_s: float = 5.0
    #: Days the daily station usage counts are kept.
    evaluation_retention_days: int = 800
    #: The public address of the web app (https://…): the bot's navigation buttons go through its
    #: `/go/` redirect so that their taps are counted. Unset: direct links, taps not counted.
    public_url: str | None = None
    #: The staff console (`/console/`). Without Redis its session cookies are encrypted with this key (a
    #: Fernet key: 32 url-safe base64 bytes, README "Staff console"); unset, each process makes its own
    #: and sessions end when it restarts.
    console_secret_key: SecretStr | None = None
    #: Session cookies only over HTTPS. Unset: on, except for `yizhan serve` on a loopback address.
    console_secure_cookies: bool | None = None
    #: Minutes without a request, and hours since the login, after which a console session is over.
    console_idle_minutes: float = Field(default=30.0, gt=0)
    console_session_hours: float = Field(default=12.0, gt=0)
    #: Failed logins after which an account is locked for CONSOLE_LOCK_MINUTES (before that each attempt
    #: waits 0, 1, 2, 4… seconds after the previous failure); the same from one client address, counted
    #: up to CONSOLE_ADDRESS_MAX_FAILURES (an office shares one address).
    console_max_failures: int = Field(default=5, gt=0)
    console_lock_minutes: float = Field(default=15.0, gt=0)
    console_address_max_failures: int = Field(default=20, gt=0)
    #: Console requests one process handles at once (a lane of its own, apart from the public API's).
    console_max_in_flight: int = Field(default=16, gt=0)
    #: The console's address as staff reach it, for the setup links `yizhan admin add-user` prints.
    console_url: str = "http://127.0.0.1:8080/console/"
    #: Days the console's audit events (logins, failures, privileged actions) are kept; the hourly
    #: retention job deletes older ones. 0 keeps them for ever.
    console_events_retention_days: int = Field(default=400, ge=0)
    #: Count searches per coarse cell for `yizhan analytics` (no user, no point; bot/services/analytics.py).
    analytics_enabled: bool = True
    #: Seconds between moves of the in-memory search counters into the database (what a crash can lose).
    analytics_flush_s: float = Field(default=5.0, gt=0, le=300)
    #: Days the search counters are kept; the hourly retention job deletes older days.
    analytics_retention_days: int = Field(default=400, gt=0)
    #: Metres a rider is taken to walk to a station: a search whose nearest open station was farther is
    #: unmet demand. One of the distance bands' edges: 500, 1000, 1500 or 3000.
    analytics_walkable_m: int = 1500

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(value, int):
            return (value,)
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, (tuple, list)):
            for network in value:
                try:
                    ip_network(network, strict=False)
                except ValueError:
                    raise ValueError(f"TRUSTED_PROXIES: {network!r} is no address or CIDR") from None
        return value

    @field_validator("http_max_in_flight", "bot_max_in_flight")
    @classmethod
    def _positive_slots(cls, value: int) -> int:
        if value < 1:
            raise ValueError("HTTP_MAX_IN_FLIGHT and BOT_MAX_IN_FLIGHT must be at least 1")
        return value

    @field_validator("default_tz")
    @classmethod
    def _known_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _tianditu_has_a_key(self) -> Settings:
        if self.map_tiles == "tianditu" and not self.tianditu_key and not self.map_tile_url:
            raise ValueError(
                "MAP_TILES=tianditu needs TIANDITU_KEY (a free key from console.tianditu.gov.cn)"
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
            raise ValueError("PUBLIC_URL must be an http(s) address without query or fragment")
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

    @field_validator(
        "auto_hide_reports",
        "report_on_site_m",
        "report_location_max_age_min",
        "volunteer_weight",
        "reporter_max_weight",
        "auto_hide_region_per_hour",
        "report_daily_closures",
        "report_daily_limit",
        "http_header_timeout",
        "http_body_timeout",
        "db_pool_timeout",
        "evaluation_flush_s",
        "evaluation_retention_days",
    )
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    @field_validator(
        "reporter_min_age_h",
        "reporter_approval_bonus",
        "reporter_rejection_penalty",
        "reporter_suspension_days",
        "auto_hide_pause_h",
        "web_report_weight",
        "web_report_rate",
        "web_report_burst",
        "api_rate_limit",
        "api_rate_burst",
        "sync_cache_seconds",
    )
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("analytics_walkable_m")
    @classmethod
    def _band_edge(cls, value: int) -> int:
        if value not in BAND_EDGES_M:
            raise ValueError("ANALYTICS_WALKABLE_M must be 500, 1000, 1500 or 3000 (a distance band's edge)")
        return value

    @field_validator("auto_hide_region_digits")
    @classmethod
    def _adcode_digits(cls, value: int) -> int:
        if not 0 <= value <= 6:
            raise ValueError("AUTO_HIDE_REGION_DIGITS must be between 0 and 6")
        return value
