"""Reports, moderation and the safety net: how the station data corrects itself.

Anyone reports a problem; reports about the same problem merge into one case; staff of the station's
region decide each case exactly once, and an approval changes the station in the same transaction as its
audit entry. When enough different people report a station closed within a day, it is hidden at once
until staff decide.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.roles import Access, NotAllowed
from bot.services.search import WGS84
from bot.services.stations import StationService
from domain.hours import validate_hours
from domain.values import (
    AMENITY_KEYS,
    GeoPoint,
    InvalidLocation,
    InvalidOpeningHours,
    Station,
    StationNotFound,
    StationStatus,
    YizhanError,
)
from storage.fences import station_write
from storage.privacy_repo import PrivacyRepository
from storage.reports_repo import OPEN_STATES, AuditRepository, ReportRepository
from storage.stations_repo import StationRepository

ON_SITE_M = 300.0
REPORT_INTERVAL = timedelta(hours=1)
SAFETY_WINDOW = timedelta(hours=24)
MAX_TEXT = 1000
DIGEST_INTERVAL = timedelta(minutes=10)


class ReportKind(enum.StrEnum):
    CLOSED_NOW = "closed_now"
    CLOSED_PERMANENTLY = "closed_permanently"
    AMENITY_BROKEN = "amenity_broken"
    WRONG_LOCATION = "wrong_location"
    WRONG_HOURS = "wrong_hours"
    OTHER = "other"


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ASK = "ask"


class InvalidReport(YizhanError):
    """`code` names the problem for the edges to word; `reason` is English, for logs. A report whose
    proposed hours cannot be read carries the parser's error as `hours_error`."""

    UNKNOWN_AMENITY = "unknown_amenity"
    AMENITY_NOT_LISTED = "amenity_not_listed"
    LOCATION = "location"
    HOURS_MISSING = "hours_missing"
    HOURS = "hours"
    KIND = "kind"
    TOO_LONG = "too_long"
    TEXT_MISSING = "text_missing"

    def __init__(self, code: str, reason: str, hours_error: InvalidOpeningHours | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.hours_error = hours_error


class ReportTooSoon(YizhanError):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"one report per station per hour; again in {retry_after}")
        self.retry_after = retry_after


class AlreadyDecided(YizhanError):
    pass


class CaseNotFound(YizhanError):
    pass


@dataclass(frozen=True, slots=True)
class SubmitResult:
    case_id: int
    reporters: int
    new_case: bool
    on_site: bool
    auto_hidden: bool
    region: str


@dataclass(frozen=True, slots=True)
class CaseView:
    id: int
    station: Station
    kind: ReportKind
    topic: str
    proposal: str
    status: str
    reporters: int
    on_site: int
    auto_hidden: bool
    created_at: datetime
    texts: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DecisionResult:
    case: CaseView
    decision: Decision
    reporters: tuple[int, ...]
    station_after: Station | None = None
    changes: dict[str, Any] = field(default_factory=dict)


def _snapshot(station: Station, fields: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(station, name)
        if isinstance(value, StationStatus):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[name] = value
    return out


def parse_proposal(kind: ReportKind, detail: str, station: Station) -> tuple[str, str]:
    """(topic, proposal) of a report, validated; raises InvalidReport with a clerk-readable reason."""
    detail = detail.strip()
    if kind is ReportKind.AMENITY_BROKEN:
        if detail not in AMENITY_KEYS:
            raise InvalidReport(InvalidReport.UNKNOWN_AMENITY, f"unknown amenity {detail!r}")
        if detail not in station.amenities:
            raise InvalidReport(InvalidReport.AMENITY_NOT_LISTED, f"the station does not list {detail}")
        return detail, ""
    if kind is ReportKind.WRONG_LOCATION:
        try:
            lat_text, lon_text = detail.split(",")
            point = GeoPoint.parse(lat_text, lon_text)
        except (ValueError, InvalidLocation):
            raise InvalidReport(InvalidReport.LOCATION, "the right location is missing or invalid") from None
        return "", f"{point.lat:.6f},{point.lon:.6f}"
    if kind is ReportKind.WRONG_HOURS:
        if not detail:
            raise InvalidReport(InvalidReport.HOURS_MISSING, "the right opening hours are missing")
        try:
            validate_hours(detail)
        except InvalidOpeningHours as exc:
            raise InvalidReport(InvalidReport.HOURS, exc.message, exc) from None
        return "", detail[:500]
    return "", ""


#: Reports that can change the station itself (the safety net hides it).
CLOSURE_KINDS = frozenset({ReportKind.CLOSED_NOW, ReportKind.CLOSED_PERMANENTLY})


class ReportService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stations: StationService,
        auto_hide_after: int = 3,
    ) -> None:
        self.sessions = sessions
        self.stations = stations
        self.auto_hide_after = auto_hide_after

    # -- reporting --------------------------------------------------------------------------------------
    async def submit(
        self,
        reporter_id: int,
        station_id: int,
        kind: ReportKind | str,
        at: datetime,
        *,
        detail: str = "",
        text: str = "",
        photo_file_id: str | None = None,
        reporter_point: GeoPoint | None = None,
    ) -> SubmitResult:
        try:
            kind = ReportKind(kind)
        except ValueError:
            raise InvalidReport(InvalidReport.KIND, f"unknown problem type {kind!r}") from None
        text = text.strip()
        if len(text) > MAX_TEXT:
            raise InvalidReport(InvalidReport.TOO_LONG, f"the text is longer than {MAX_TEXT} characters")
        if kind is ReportKind.OTHER and not text:
            raise InvalidReport(InvalidReport.TEXT_MISSING, "describe the problem")
        hidden: Station | None = None
        async with station_write(self.sessions, "report", fenced=kind in CLOSURE_KINDS) as session:
            stations = StationRepository(session)
            reports = ReportRepository(session)
            station = await stations.get(station_id)
            if station is None or station.status is StationStatus.CLOSED:
                raise StationNotFound(str(station_id))
            topic, proposal = parse_proposal(kind, detail, station)
            last = await reports.last_report_at(reporter_id, station_id)
            if last is not None and at - last < REPORT_INTERVAL:
                raise ReportTooSoon(REPORT_INTERVAL - (at - last))
            on_site = False
            where = reporter_point
            if kind is ReportKind.WRONG_LOCATION:
                lat, lon = proposal.split(",")
                where = GeoPoint(float(lat), float(lon))
            if where is not None:
                on_site = WGS84.inv(where.lon, where.lat, station.lon, station.lat)[2] <= ON_SITE_M
            case = await reports.open_case(station_id, kind.value, topic)
            new_case = case is None
            if case is None:
                case = await reports.add_case(
                    station_id=station_id,
                    region=station.region,
                    kind=kind.value,
                    topic=topic,
                    proposal=proposal,
                    status="open",
                    reporters=0,
                    on_site=0,
                    created_at=at,
                    updated_at=at,
                )
            if not await reports.has_reported(case.id, reporter_id):
                case.reporters += 1
            if on_site:
                case.on_site += 1
            if proposal:
                case.proposal = proposal
            case.updated_at = at
            await reports.add_report(
                case_id=case.id,
                station_id=station_id,
                reporter_id=reporter_id,
                kind=kind.value,
                detail=proposal or topic,
                text=text,
                photo_file_id=photo_file_id,
                on_site=on_site,
                created_at=at,
            )
            auto_hidden = case.auto_hidden
            if (
                kind in CLOSURE_KINDS
                and station.status is StationStatus.ACTIVE
                and await reports.closure_reporters_since(station_id, at - SAFETY_WINDOW)
                >= self.auto_hide_after
            ):
                hidden = await stations.update_fields(station_id, status=StationStatus.TEMPORARILY_CLOSED)
                await AuditRepository(session).add(
                    station_id,
                    None,
                    "auto_hide",
                    {"status": station.status.value},
                    {"status": hidden.status.value},
                    at,
                    reason=f"{self.auto_hide_after} people reported it closed within 24 hours",
                    case_id=case.id,
                )
                await reports.mark_auto_hidden(station_id)
                auto_hidden = True
            result = SubmitResult(case.id, case.reporters, new_case, on_site, auto_hidden, station.region)
        if hidden is not None:
            self.stations.reflect(hidden)
        return result

    # -- moderation -------------------------------------------------------------------------------------
    async def open_cases(
        self, access: Access, limit: int = 10, offset: int = 0
    ) -> tuple[list[CaseView], int]:
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        async with self.sessions() as session:
            reports = ReportRepository(session)
            rows = await reports.open_cases(access.regions, limit, offset)
            total = await reports.count_open_cases(access.regions)
            stations = await StationRepository(session).get_many([row.station_id for row in rows])
            return [await self._view(reports, row, stations[row.station_id]) for row in rows], total

    async def case(self, case_id: int, access: Access) -> CaseView:
        async with self.sessions() as session:
            reports = ReportRepository(session)
            row = await reports.get_case(case_id)
            if row is None:
                raise CaseNotFound(str(case_id))
            access.require_staff_for(row.region)
            station = await StationRepository(session).get(row.station_id)
            assert station is not None
            return await self._view(reports, row, station)

    async def _view(self, reports: ReportRepository, row: Any, station: Station) -> CaseView:
        items = await reports.reports_of(row.id)
        return CaseView(
            id=row.id,
            station=station,
            kind=ReportKind(row.kind),
            topic=row.topic,
            proposal=row.proposal,
            status=row.status,
            reporters=row.reporters,
            on_site=row.on_site,
            auto_hidden=row.auto_hidden,
            created_at=row.created_at,
            texts=tuple(r.text for r in items if r.text)[-5:],
            photos=tuple(r.photo_file_id for r in items if r.photo_file_id)[-3:],
        )

    async def decide(
        self, case_id: int, decision: Decision | str, access: Access, at: datetime
    ) -> DecisionResult:
        """Approve, reject or ask for details; of concurrent deciders exactly one succeeds."""
        decision = Decision(decision)
        changed: Station | None = None
        changes: dict[str, Any] = {}
        async with station_write(
            self.sessions, "decide report case", fenced=decision is not Decision.ASK
        ) as session:
            reports = ReportRepository(session)
            stations = StationRepository(session)
            row = await reports.get_case(case_id)
            if row is None:
                raise CaseNotFound(str(case_id))
            access.require_staff_for(row.region)
            if row.status not in OPEN_STATES:
                raise AlreadyDecided(str(case_id))
            status = {"approve": "approved", "reject": "rejected", "ask": "needs_info"}[decision.value]
            if decision is Decision.ASK and row.status == "needs_info":
                raise AlreadyDecided(str(case_id))
            if not await reports.claim(
                case_id, status, access.user_id, at, final=decision is not Decision.ASK
            ):
                raise AlreadyDecided(str(case_id))
            station = await stations.get(row.station_id)
            assert station is not None
            kind = ReportKind(row.kind)
            if decision is Decision.APPROVE:
                changes = self._changes_for(kind, row.topic, row.proposal, station)
                action = f"approve_{kind.value}"
            elif (
                decision is Decision.REJECT
                and row.auto_hidden
                and station.status is StationStatus.TEMPORARILY_CLOSED
            ):
                # The safety net hid it; staff found the reports wrong, so it comes back.
                changes = {"status": StationStatus.ACTIVE}
                action = "auto_restore"
            if changes:
                changed = await stations.update_fields(station.id, **changes)
                await AuditRepository(session).add(
                    station.id,
                    access.user_id,
                    action,
                    _snapshot(station, tuple(changes)),
                    _snapshot(changed, tuple(changes)),
                    at,
                    case_id=case_id,
                )
            if kind is ReportKind.WRONG_LOCATION and decision is not Decision.ASK:
                # The proposed points are where reporters stood: kept only while staff need them.
                await PrivacyRepository(session).forget_location_proposals(case_id)
            reporters = tuple(await reports.reporters_of(case_id))
            await session.refresh(row)
            view = await self._view(reports, row, changed or station)
        if changed is not None:
            self.stations.reflect(changed)
        return DecisionResult(view, decision, reporters, changed, changes)

    @staticmethod
    def _changes_for(kind: ReportKind, topic: str, proposal: str, station: Station) -> dict[str, Any]:
        if kind is ReportKind.CLOSED_NOW:
            return {"status": StationStatus.TEMPORARILY_CLOSED}
        if kind is ReportKind.CLOSED_PERMANENTLY:
            return {"status": StationStatus.CLOSED}
        if kind is ReportKind.AMENITY_BROKEN:
            return {"amenities": tuple(a for a in station.amenities if a != topic)}
        if kind is ReportKind.WRONG_LOCATION:
            lat, lon = proposal.split(",")
            return {"lat": float(lat), "lon": float(lon)}
        if kind is ReportKind.WRONG_HOURS:
            return {"opening_hours": proposal}
        return {}

    # -- staff digests ----------------------------------------------------------------------------------
    async def due_digests(self, moderators: dict[int, Access], at: datetime) -> dict[int, list[CaseView]]:
        """New open cases per staff member not told for DIGEST_INTERVAL (see `digest_sent`)."""
        due: dict[int, list[CaseView]] = {}
        async with self.sessions() as session:
            reports = ReportRepository(session)
            for user_id, access in moderators.items():
                last = await reports.digest_sent_at(user_id)
                if last is not None and at - last < DIGEST_INTERVAL:
                    continue
                rows = await reports.new_cases_for(access.regions, last)
                if not rows:
                    continue
                stations = await StationRepository(session).get_many([r.station_id for r in rows])
                due[user_id] = [await self._view(reports, r, stations[r.station_id]) for r in rows]
        return due

    async def digest_sent(self, user_id: int, at: datetime) -> None:
        """Record a delivered digest; one that failed to send is tried again next round."""
        async with self.sessions() as session, session.begin():
            await ReportRepository(session).record_digest(user_id, at)
