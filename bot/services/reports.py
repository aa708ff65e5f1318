"""Reports, moderation and the safety net: how the station data corrects itself.

Anyone reports a problem; reports about the same problem merge into one case; staff of the station's
region decide each case exactly once, and an approval changes the station in the same transaction as its
audit entry.

The safety net hides a station reported closed before staff decide, on evidence rather than headcount:
a closure report weighs something only when the reporter shared a Telegram location message near the
station shortly before (`SiteEvidence`: the distance and the time, never the point), and only as much as
the reporter is trusted (`TrustPolicy`: accounts seen for a day that searched before; volunteers more,
staff decisions move it, a rejected automatic hiding suspends its reporters). Per-reporter limits span
all stations, and a circuit breaker pauses automatic hiding in a region that suddenly loses many
stations, alerting its staff. Below the threshold riders see the reports that weigh something
(bot/services/closures.py).
"""

from __future__ import annotations

import asyncio
import enum
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.closures import ClosureNote
from bot.services.roles import Access, NotAllowed
from bot.services.search import WGS84
from bot.services.stations import StationService
from domain.hours_zh import accept_hours
from domain.statuses import CaseStatus
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
from storage.reports_repo import CLOSURE_KINDS as STORED_CLOSURE_KINDS
from storage.reports_repo import OPEN_STATES, AuditRepository, ReporterFacts, ReportRepository
from storage.stations_repo import StationRepository
from storage.web_reports_repo import WebDeviceRepository

if TYPE_CHECKING:
    from bot.config import Settings

REPORT_INTERVAL = timedelta(hours=1)
SAFETY_WINDOW = timedelta(hours=24)
#: The per-reporter limits count the reports of this long, all stations together.
LIMIT_WINDOW = timedelta(hours=24)
#: The circuit breaker counts the automatic hidings of this long in a region.
BREAKER_WINDOW = timedelta(hours=1)
MAX_TEXT = 1000
DIGEST_INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """Every number of the safety net; `Settings` documents each (bot/config.py)."""

    auto_hide_weight: float = 3.0
    on_site_m: float = 300.0
    location_max_age: timedelta = timedelta(minutes=30)
    min_account_age: timedelta = timedelta(hours=24)
    volunteer_weight: float = 1.5
    approval_bonus: float = 0.25
    rejection_penalty: float = 0.5
    max_weight: float = 2.0
    suspension: timedelta = timedelta(days=30)
    daily_closures: int = 5
    daily_reports: int = 20
    region_digits: int = 4
    region_hides_per_hour: int = 5
    region_pause: timedelta = timedelta(hours=24)
    #: What an on-site closure report from the H5 page weighs: a browser can claim any position and
    #: costs nothing to replace, so nothing unless WEB_REPORT_WEIGHT says otherwise.
    web_weight: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustPolicy:
        return cls(
            auto_hide_weight=settings.auto_hide_reports,
            on_site_m=settings.report_on_site_m,
            location_max_age=timedelta(minutes=settings.report_location_max_age_min),
            min_account_age=timedelta(hours=settings.reporter_min_age_h),
            volunteer_weight=settings.volunteer_weight,
            approval_bonus=settings.reporter_approval_bonus,
            rejection_penalty=settings.reporter_rejection_penalty,
            max_weight=settings.reporter_max_weight,
            suspension=timedelta(days=settings.reporter_suspension_days),
            daily_closures=settings.report_daily_closures,
            daily_reports=settings.report_daily_limit,
            region_digits=settings.auto_hide_region_digits,
            region_hides_per_hour=settings.auto_hide_region_per_hour,
            region_pause=timedelta(hours=settings.auto_hide_pause_h),
            web_weight=settings.web_report_weight,
        )

    def standing(self, facts: ReporterFacts, at: datetime) -> Standing:
        if facts.first_seen is None or at - facts.first_seen < self.min_account_age:
            return Standing.NEW_ACCOUNT
        if facts.first_search is None or facts.first_search > at:
            return Standing.NO_SEARCH
        if facts.suspended_until is not None and facts.suspended_until > at:
            return Standing.SUSPENDED
        return Standing.TRUSTED

    def weight(self, facts: ReporterFacts, at: datetime) -> float:
        """What an on-site closure report by this reporter weighs at `at`."""
        if self.standing(facts, at) is not Standing.TRUSTED:
            return 0.0
        base = self.volunteer_weight if facts.roles else 1.0  # every role is at least a volunteer
        weight = base + self.approval_bonus * facts.approved - self.rejection_penalty * facts.rejected
        return min(max(weight, 0.0), max(self.max_weight, base))

    def device_weight(self, first_seen: datetime | None, at: datetime) -> float:
        """What an on-site closure report from a browser of the H5 page weighs at `at`: `web_weight` once
        the browser has been known as long as an account must be, else nothing."""
        if self.web_weight <= 0 or first_seen is None or at - first_seen < self.min_account_age:
            return 0.0
        return min(self.web_weight, self.max_weight)


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


#: The status a decision moves a case to.
_DECIDED_STATUS: dict[Decision, CaseStatus] = {
    Decision.APPROVE: CaseStatus.APPROVED,
    Decision.REJECT: CaseStatus.REJECTED,
    Decision.ASK: CaseStatus.NEEDS_INFO,
}
#: The decision that left a case in a status.
_DECISION_OF: dict[CaseStatus, Decision] = {status: decision for decision, status in _DECIDED_STATUS.items()}


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


class Standing(enum.StrEnum):
    """Why a reporter's reports weigh what they do."""

    TRUSTED = "trusted"
    NEW_ACCOUNT = "new_account"  # first seen less than `TrustPolicy.min_account_age` ago
    NO_SEARCH = "no_search"  # never searched before reporting
    SUSPENDED = "suspended"  # reported an automatic hiding that staff rejected


class Evidence(enum.StrEnum):
    """What a report shows of the reporter being at the station."""

    ON_SITE = "on_site"
    OFF_SITE = "off_site"  # a location message too far away
    STALE = "stale"  # a location message too long before the report
    NONE = "none"  # no location message


class ReportTooSoon(YizhanError):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"one report per station per hour; again in {retry_after}")
        self.retry_after = retry_after


class ReportLimitReached(YizhanError):
    """The reporter sent as many reports (of this kind) as one person may in a day."""

    def __init__(self, limit: int, closures: bool) -> None:
        what = "closure reports" if closures else "reports"
        super().__init__(f"at most {limit} {what} a day")
        self.limit = limit
        self.closures = closures


@dataclass(frozen=True, slots=True)
class SiteEvidence:
    """What a location message shared during a report proves: how far from the station the reporter was,
    and when. The point itself is never kept."""

    station_id: int
    distance_m: float
    at: datetime


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
    evidence: Evidence = Evidence.NONE
    #: What the report weighs toward hiding the station.
    weight: float = 0.0
    #: The circuit breaker held back an automatic hiding this report would have caused.
    paused: bool = False


@dataclass(frozen=True, slots=True)
class CaseView:
    id: int
    station: Station
    kind: ReportKind
    topic: str
    proposal: str
    status: CaseStatus
    reporters: int
    on_site: int
    auto_hidden: bool
    created_at: datetime
    texts: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()
    #: The case's weighted evidence (the heaviest report of each reporter, summed).
    weight: float = 0.0


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """An earlier case of a station, as a line beside the case being decided."""

    id: int
    kind: ReportKind
    topic: str
    status: CaseStatus
    reporters: int
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class CaseContext:
    """What staff look at beside a case: its station's earlier cases, what riders are told about its
    closure now, and whether automatic hiding is paused in its region."""

    case: CaseView
    earlier: tuple[CaseSummary, ...]
    closure: ClosureNote | None
    pause: RegionPause | None


@dataclass(frozen=True, slots=True)
class RegionPause:
    """The circuit breaker tripped: automatic hiding paused in `region` until `until`."""

    region: str
    started_at: datetime
    until: datetime
    hidden: int


@dataclass(frozen=True, slots=True)
class StaffDigest:
    cases: list[CaseView]
    pauses: list[RegionPause] = field(default_factory=list)


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


def _heaviest(items: list[Any]) -> dict[int, float]:
    heaviest: dict[int, float] = {}
    for item in items:
        heaviest[item.reporter_id] = max(heaviest.get(item.reporter_id, 0.0), item.weight)
    return heaviest


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
        detail = detail[:500]
        try:
            accept_hours(detail)  # OSM, or Chinese as riders type it: translated when staff approve
        except InvalidOpeningHours as exc:
            raise InvalidReport(InvalidReport.HOURS, exc.message, exc) from None
        return "", detail
    return "", ""


def check_text(kind: ReportKind, text: str) -> str:
    """A report's text, stripped; raises InvalidReport when too long, or missing where it is the report."""
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise InvalidReport(InvalidReport.TOO_LONG, f"the text is longer than {MAX_TEXT} characters")
    if kind is ReportKind.OTHER and not text:
        raise InvalidReport(InvalidReport.TEXT_MISSING, "describe the problem")
    return text


#: Reports that can change the station itself (the safety net hides it).
CLOSURE_KINDS = frozenset(ReportKind(kind) for kind in STORED_CLOSURE_KINDS)


class ReportService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stations: StationService,
        policy: TrustPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.stations = stations
        self.policy = policy or TrustPolicy()

    # -- reporting --------------------------------------------------------------------------------------
    async def locate(self, station_id: int, point: GeoPoint, at: datetime) -> SiteEvidence:
        """The evidence of a location message shared while reporting a station: its distance, and when."""
        station = await self.stations.get_by_id(station_id)
        distance = float(WGS84.inv(point.lon, point.lat, station.lon, station.lat)[2])
        return SiteEvidence(station_id, distance, at)

    def judge(self, evidence: SiteEvidence | None, station_id: int, at: datetime) -> Evidence:
        if evidence is None or evidence.station_id != station_id or not math.isfinite(evidence.distance_m):
            return Evidence.NONE
        if not timedelta(0) <= at - evidence.at <= self.policy.location_max_age:
            return Evidence.STALE
        return Evidence.ON_SITE if evidence.distance_m <= self.policy.on_site_m else Evidence.OFF_SITE

    async def submit(
        self,
        reporter_id: int | None,
        station_id: int,
        kind: ReportKind | str,
        at: datetime,
        *,
        detail: str = "",
        text: str = "",
        photo_file_id: str | None = None,
        evidence: SiteEvidence | None = None,
        device_id: int | None = None,
    ) -> SubmitResult:
        """A report by Telegram user `reporter_id`, or (with `reporter_id` None) by the H5 page's browser
        `device_id`; the limits are the same for both."""
        try:
            kind = ReportKind(kind)
        except ValueError:
            raise InvalidReport(InvalidReport.KIND, f"unknown problem type {kind!r}") from None
        text = check_text(kind, text)
        policy = self.policy
        closure = kind in CLOSURE_KINDS
        hidden: Station | None = None
        async with station_write(self.sessions, "report", fenced=closure) as session:
            stations = StationRepository(session)
            reports = ReportRepository(session)
            # Reports about one station take turns: two at the same moment would each count the closure
            # evidence without the other's (neither reaching the threshold that hides the station) and
            # could each open a case for the same problem.
            station = await stations.get(station_id, for_update=True)
            if station is None or station.status is StationStatus.CLOSED:
                raise StationNotFound(str(station_id))
            topic, proposal = parse_proposal(kind, detail, station)
            last = await reports.last_report_at(reporter_id, station_id, device_id)
            if last is not None and at - last < REPORT_INTERVAL:
                raise ReportTooSoon(REPORT_INTERVAL - (at - last))
            sent, closures_sent = await reports.sent_since(reporter_id, at - LIMIT_WINDOW, device_id)
            if closure and closures_sent >= policy.daily_closures:
                raise ReportLimitReached(policy.daily_closures, closures=True)
            if sent >= policy.daily_reports:
                raise ReportLimitReached(policy.daily_reports, closures=False)
            verdict = self.judge(evidence, station_id, at)
            on_site = verdict is Evidence.ON_SITE
            if kind is ReportKind.WRONG_LOCATION and evidence is None:
                # The proposed position itself shows whether the reporter stood near the listed one.
                lat, lon = proposal.split(",")
                on_site = WGS84.inv(float(lon), float(lat), station.lon, station.lat)[2] <= policy.on_site_m
            weight = 0.0
            if closure and on_site and reporter_id is not None:
                weight = policy.weight(await reports.reporter_facts(reporter_id), at)
            elif closure and on_site and device_id is not None:
                weight = policy.device_weight(await WebDeviceRepository(session).first_seen(device_id), at)
            case = await reports.open_case(station_id, kind.value, topic)
            new_case = case is None
            if case is None:
                case = await reports.add_case(
                    station_id=station_id,
                    region=station.region,
                    kind=kind.value,
                    topic=topic,
                    proposal=proposal,
                    status=CaseStatus.OPEN,
                    reporters=0,
                    on_site=0,
                    created_at=at,
                    updated_at=at,
                )
            if not await reports.has_reported(case.id, reporter_id, device_id):
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
                distance_m=round(evidence.distance_m) if verdict is not Evidence.NONE and evidence else None,
                located_at=evidence.at if verdict is not Evidence.NONE and evidence else None,
                weight=weight,
                created_at=at,
                device_id=device_id,
            )
            auto_hidden = case.auto_hidden
            paused = False
            if (
                weight > 0
                and station.status is StationStatus.ACTIVE
                and await reports.closure_evidence_since(station_id, at - SAFETY_WINDOW)
                >= policy.auto_hide_weight
            ):
                if await self._breaker_allows(reports, station.region, at):
                    hidden = await stations.update_fields(station_id, status=StationStatus.TEMPORARILY_CLOSED)
                    await AuditRepository(session).add(
                        station_id,
                        None,
                        "auto_hide",
                        {"status": station.status.value},
                        {"status": hidden.status.value},
                        at,
                        reason=f"closure reports weighing {policy.auto_hide_weight:g} within 24 hours",
                        case_id=case.id,
                    )
                    await reports.mark_auto_hidden(station_id)
                    auto_hidden = True
                else:
                    paused = True
            result = SubmitResult(
                case.id,
                case.reporters,
                new_case,
                on_site,
                auto_hidden,
                station.region,
                verdict,
                weight,
                paused,
            )
        if hidden is not None:
            self.stations.reflect(hidden)
        if weight > 0:
            await self.stations.closure_reports_changed(station_id)
        return result

    def region_of(self, adcode: str) -> str:
        """The circuit breaker's region of a station: its adcode's first digits."""
        return adcode[: self.policy.region_digits]

    async def _breaker_allows(self, reports: ReportRepository, adcode: str, at: datetime) -> bool:
        """Whether the region may hide one more station now; trips the breaker when it may not."""
        policy = self.policy
        region = self.region_of(adcode)
        if await reports.pause_of(region, at) is not None:
            return False
        hidden = await reports.auto_hides_since(region, policy.region_digits, at - BREAKER_WINDOW)
        if hidden < policy.region_hides_per_hour:
            return True
        await reports.add_pause(region, at, at + policy.region_pause, hidden)
        return False

    async def region_pause(self, adcode: str, at: datetime) -> RegionPause | None:
        """The pause of automatic hiding in a station's region at `at`, if any."""
        async with self.sessions() as session:
            row = await ReportRepository(session).pause_of(self.region_of(adcode), at)
        return RegionPause(row.region, row.started_at, row.until, row.hidden) if row else None

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

    async def context(self, case_id: int, access: Access, at: datetime, earlier: int = 10) -> CaseContext:
        """A case with its station's context (see `CaseContext`), for staff of its region."""
        case = await self.case(case_id, access)
        async with self.sessions() as session:
            rows = await ReportRepository(session).cases_of_station(case.station.id, earlier, exclude=case.id)
        summaries = tuple(
            CaseSummary(
                row.id,
                ReportKind(row.kind),
                row.topic,
                CaseStatus(row.status),
                row.reporters,
                row.created_at,
                row.decided_at,
            )
            for row in rows
        )
        closure = self.stations.closures.get(case.station.id, at)
        return CaseContext(case, summaries, closure, await self.region_pause(case.station.region, at))

    async def _view(self, reports: ReportRepository, row: Any, station: Station) -> CaseView:
        items = await reports.reports_of(row.id)
        return CaseView(
            id=row.id,
            station=station,
            kind=ReportKind(row.kind),
            topic=row.topic,
            proposal=row.proposal,
            status=CaseStatus(row.status),
            reporters=row.reporters,
            on_site=row.on_site,
            auto_hidden=row.auto_hidden,
            created_at=row.created_at,
            texts=tuple(r.text for r in items if r.text)[-5:],
            photos=tuple(r.photo_file_id for r in items if r.photo_file_id)[-3:],
            weight=sum(_heaviest(items).values()),
        )

    async def decide(
        self, case_id: int, decision: Decision | str, access: Access, at: datetime, tell_later: bool = False
    ) -> DecisionResult:
        """Approve, reject or ask for details; of concurrent deciders exactly one succeeds. `tell_later`
        (a decision outside the bot): the bot tells the reporters (`outcomes_to_tell`)."""
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
            status = _DECIDED_STATUS[decision]
            if decision is Decision.ASK and row.status == CaseStatus.NEEDS_INFO:
                raise AlreadyDecided(str(case_id))
            # The station's row first, then the case's: the order a report takes them in (`submit`), so
            # that a report arriving while its case is decided waits instead of deadlocking.
            station = await stations.get(row.station_id, for_update=True)
            assert station is not None
            if not await reports.claim(
                case_id, status, access.user_id, at, final=decision is not Decision.ASK
            ):
                raise AlreadyDecided(str(case_id))
            kind = ReportKind(row.kind)
            if decision is Decision.APPROVE:
                changes = self._changes_for(kind, row.topic, row.proposal, station)
                action = f"approve_{kind.value}"
                if "lat" in changes:
                    # A station that moves takes the region of where it now stands.
                    region = await asyncio.to_thread(
                        lambda: self.stations.regions.index().lookup(changes["lat"], changes["lon"])
                    )
                    if region is not None and region.adcode != station.region:
                        changes["region"] = region.adcode
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
            if tell_later and reporters:
                await reports.mark_outcome_pending(case_id)
            if decision is not Decision.ASK:
                # Staff's verdict moves the reporters' weight; a wrong automatic hiding suspends them.
                suspend = row.auto_hidden and decision is Decision.REJECT
                await reports.record_outcome(
                    reporters,
                    approved=decision is Decision.APPROVE,
                    at=at,
                    suspend_until=at + self.policy.suspension if suspend else None,
                )
            await session.refresh(row)
            view = await self._view(reports, row, changed or station)
        if changed is not None:
            self.stations.reflect(changed)
        if kind in CLOSURE_KINDS and decision is not Decision.ASK:
            await self.stations.closure_reports_changed(view.station.id)
        return DecisionResult(view, decision, reporters, changed, changes)

    async def outcomes_to_tell(self, limit: int = 50) -> list[DecisionResult]:
        """Decisions made outside the bot whose reporters were not told yet, each taken by this caller
        alone (a reporter is told at most once, whichever bot replica asks)."""
        results: list[DecisionResult] = []
        async with self.sessions() as session:
            pending = await ReportRepository(session).outcomes_pending(limit)
        for row in pending:
            async with self.sessions() as session, session.begin():
                reports = ReportRepository(session)
                if not await reports.claim_outcome(row.id):
                    continue
                station = await StationRepository(session).get(row.station_id)
                if station is None:
                    continue
                view = await self._view(reports, row, station)
                reporters = tuple(await reports.reporters_of(row.id))
            results.append(DecisionResult(view, _DECISION_OF[view.status], reporters))
        return results

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
            accepted = accept_hours(proposal)
            return {"opening_hours": accepted.expression, "opening_hours_text": accepted.original}
        return {}

    # -- staff digests ----------------------------------------------------------------------------------
    async def due_digests(self, moderators: dict[int, Access], at: datetime) -> dict[int, StaffDigest]:
        """Per staff member: new open cases when not told for DIGEST_INTERVAL, and at once any pause of
        automatic hiding in their regions they were not told about (see `digest_sent`)."""
        due: dict[int, StaffDigest] = {}
        async with self.sessions() as session:
            reports = ReportRepository(session)
            for user_id, access in moderators.items():
                last = await reports.digest_sent_at(user_id)
                pauses = [
                    RegionPause(p.region, p.started_at, p.until, p.hidden)
                    for p in await reports.pauses_for(access.regions, last)
                ]
                if not pauses and last is not None and at - last < DIGEST_INTERVAL:
                    continue
                rows = await reports.new_cases_for(access.regions, last)
                if not rows and not pauses:
                    continue
                stations = await StationRepository(session).get_many([r.station_id for r in rows])
                cases = [await self._view(reports, r, stations[r.station_id]) for r in rows]
                due[user_id] = StaffDigest(cases, pauses)
        return due

    async def digest_sent(self, user_id: int, at: datetime) -> None:
        """Record a delivered digest; one that failed to send is tried again next round."""
        async with self.sessions() as session, session.begin():
            await ReportRepository(session).record_digest(user_id, at)
