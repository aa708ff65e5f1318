"""SQLAlchemy 2 models: the tables behind every repository.

The same models run on SQLite and on PostgreSQL. On PostgreSQL the first migration adds a generated
`geog geography(Point, 4326)` column with a GiST index to `stations`; the ORM never writes it, so no code
outside the migrations has to know which backend it talks to.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from domain.clock import utc_now
from domain.statuses import AnnouncementStatus, CaseStatus, DeliveryStatus

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for Telegram ids and growth.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns aware datetimes (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class StationRow(Base):
    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    lat: Mapped[float] = mapped_column(Float(precision=53))
    lon: Mapped[float] = mapped_column(Float(precision=53))
    region: Mapped[str] = mapped_column(String(12), default="", index=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    #: The hours as written (Chinese) when `opening_hours` is their OSM translation; NULL otherwise.
    opening_hours_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    amenities: Mapped[list[str]] = mapped_column(JSON, default=list)
    phone: Mapped[str] = mapped_column(String(64), default="")
    manager: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(24), default="active")
    #: import (a sheet or staff) | seed (the synthetic national set) | demo; seeding never overwrites
    #: another origin's station.
    origin: Mapped[str] = mapped_column(String(16), default="import", server_default="import")
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)

    __table_args__ = (
        Index("ix_stations_updated_at_id", "updated_at", "id"),
        Index("ix_stations_status_code", "status", "code"),
    )


class UserRow(Base):
    """A person known to the bot (Telegram id) and their explicit preferences."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_name: Mapped[str] = mapped_column(String(200), default="")
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    language_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # An explicit /language choice; None means "follow Telegram's language_code".
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    amenity_filter: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class RoleRow(Base):
    """A privilege: volunteer, staff (of a region, by adcode prefix) or admin ("" region = everywhere)."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    role: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(12), default="")
    granted_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (UniqueConstraint("user_id", "role", "region", name="uq_roles_user_role_region"),)


class CaseRow(Base):
    """One problem with one station, reported by one or more people, decided once by staff."""

    __tablename__ = "report_cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    region: Mapped[str] = mapped_column(String(12), default="", index=True)
    kind: Mapped[str] = mapped_column(String(24))
    # What makes two reports the same problem: the amenity for "amenity broken", else empty.
    topic: Mapped[str] = mapped_column(String(64), default="")
    # The latest proposed value (hours, "lat,lon"), applied on approval.
    proposal: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value, index=True)
    reporters: Mapped[int] = mapped_column(Integer, default=0)
    on_site: Mapped[int] = mapped_column(Integer, default=0)
    auto_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    #: Decided outside the bot (the console): the bot tells the reporters, then clears it.
    outcome_pending: Mapped[bool] = mapped_column(Boolean, default=False)


class ReportRow(Base):
    """One person's report. No position is kept: only whether it was made on site (within 300 m)."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("report_cases.id"), index=True)
    station_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # None once the reporter asked to be forgotten (/forget): the report stays, unlinked.
    reporter_id: Mapped[int | None] = mapped_column(BigInteger, index=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(String(500), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    photo_file_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    on_site: Mapped[bool] = mapped_column(Boolean, default=False)
    # The evidence of a location message shared with the report: its distance from the station and when
    # it was sent (never the point).
    distance_m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    located_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What the report weighs toward hiding the station (0: no evidence, or a reporter not trusted yet).
    weight: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # A report sent from the H5 page: the browser that sent it (reporter_id is then None).
    device_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_reports_reporter_created", "reporter_id", "created_at"),
        Index("ix_reports_device_created", "device_id", "created_at"),
    )


class WebDeviceRow(Base):
    """A browser that sent a report from the H5 page. Only a hash of its token is kept: the token itself
    lives in the browser, which shows it to follow its reports."""

    __tablename__ = "web_devices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (UniqueConstraint("token_hash", name="uq_web_devices_token_hash"),)


class ReporterRow(Base):
    """A reporter's record with staff: decided cases and a suspension after a rejected automatic hiding."""

    __tablename__ = "reporters"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    approved: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    suspended_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class RegionPauseRow(Base):
    """The circuit breaker: automatic hiding paused in one region (adcode prefix) until `until`."""

    __tablename__ = "region_pauses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(12), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Stations the region had hidden automatically within the hour before the pause.
    hidden: Mapped[int] = mapped_column(Integer, default=0)


class RatingRow(Base):
    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    # None once the rider asked to be forgotten (/forget): the rating stays, unlinked.
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (UniqueConstraint("station_id", "user_id", name="uq_ratings_station_user"),)


class AuditRow(Base):
    """Every change to a station: who (None = the system), what, before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    case_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (Index("ix_audit_log_action_created", "action", "created_at"),)


class StaffDigestRow(Base):
    """When a staff member was last told about new cases (digests at most every 10 minutes)."""

    __tablename__ = "staff_digests"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubscriptionRow(Base):
    """A rider's consent to announcements, with a coarse area only: a ~5 km geohash cell (or none) and
    the region it lies in. Never a raw position."""

    __tablename__ = "subscriptions"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    cell: Mapped[str] = mapped_column(String(12), default="", index=True)
    region: Mapped[str] = mapped_column(String(12), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class AnnouncementRow(Base):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    author_id: Mapped[int] = mapped_column(BigInteger, index=True)
    text: Mapped[str] = mapped_column(Text)
    photo_file_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Audience: every subscriber whose region starts with `region`, optionally only those whose cell
    # centre lies within `radius_km` of (lat, lon).
    region: Mapped[str] = mapped_column(String(12), default="")
    lat: Mapped[float | None] = mapped_column(Float(precision=53), nullable=True)
    lon: Mapped[float | None] = mapped_column(Float(precision=53), nullable=True)
    radius_km: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=AnnouncementStatus.DRAFT.value, index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeliveryRow(Base):
    """The outbox: one row per (announcement, recipient), so nobody can be queued twice."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    # pending → sending → sent | failed | blocked; "sending" left by a crash becomes "uncertain".
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("announcement_id", "user_id", name="uq_deliveries_announcement_user"),
        Index("ix_deliveries_announcement_status", "announcement_id", "status"),
    )


class BotBlockRow(Base):
    """Users who blocked the bot: announcements skip them from then on."""

    __tablename__ = "bot_blocks"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class SubscriptionOfferRow(Base):
    """Whom the bot already offered a subscription (once, after their first search)."""

    __tablename__ = "subscription_offers"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class WriteFenceRow(Base):
    """A station write in progress: syncs promise nothing past its start (storage/fences.py)."""

    __tablename__ = "write_fences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: Who holds it (a process and what it does), for an operator looking at a stale fence.
    holder: Mapped[str] = mapped_column(String(100), default="")


class ImportRunRow(Base):
    """One station file uploaded in the console: checked (a dry run), then committed once, with who did
    it, its counts and progress. The import history and the dashboard's last imports read it."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The console's audit identity of whoever uploaded (and alone may commit) the file.
    actor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    file_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    file_sha256: Mapped[str] = mapped_column(String(64), default="")
    #: checking, checked, refused, committing, done, failed (bot/services/imports.py: RunStatus).
    status: Mapped[str] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(8), default="en")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    warned: Mapped[int] = mapped_column(Integer, default=0)
    #: Rows read so far by the running step, for the progress bar.
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    #: The first rejected rows and warnings as message ids and parameters, rendered in the reader's
    #: language; a file-level error under "file".
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_import_runs_status_created", "status", "created_at"),)


class ImportRunRegionRow(Base):
    """The districts whose stations an import run holds: the history of a region's staff reads it."""

    __tablename__ = "import_run_regions"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("import_runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    region: Mapped[str] = mapped_column(String(12), primary_key=True, index=True)


class StationUsageRow(Base):
    """How riders used one station on one day (DEFAULT_TZ's calendar): its card shown, taps on its
    navigation and call buttons. Counts only: no rider, no position, no time of day."""

    __tablename__ = "station_usage"

    station_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(Integer, default=0)
    navigations: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_station_usage_day", "day"),)


class ConsoleAccountRow(Base):
    """A staff console login. Its roles are the `roles` rows of its actor id: the linked Telegram id, else
    minus its own id (bot/services/console_accounts.py: `actor_id`)."""

    __tablename__ = "console_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: Argon2id in PHC string form; empty until a setup link is used.
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Sessions that logged in before this instant are over ("log out everywhere", a new password).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Consecutive failed logins, and until when the next attempt is refused (a short delay or a lock).
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: SHA-256 of a one-time setup link's token, and when the link stops working.
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    setup_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConsoleEventRow(Base):
    """The console's audit: logins, failures, logouts and privileged actions, with the client's address."""

    __tablename__ = "console_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    username: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_console_events_address_action_at", "address", "action", "at"),
        Index("ix_console_events_account_at", "account_id", "at"),
    )


class SearchDemandRow(Base):
    """How many searches one coarse cell saw in one local day, hour of the week, channel, amenity filter
    and distance band of the nearest open station (bot/services/analytics.py). No person, no point: the
    cell is an H3 index at resolution 8 (~0.7 km²); replicas add their counts to the same row."""

    __tablename__ = "search_demand"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hour_of_week: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    amenities: Mapped[str] = mapped_column(String(200), primary_key=True)
    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
