"""Announcements: subscriptions with coarse areas, composing with an audience, and durable delivery.

Delivery works from an outbox (one row per recipient, unique per announcement), through a rate limiter
shared by all processes, honouring Telegram's `retry_after`, skipping people who blocked the bot and
retrying transient errors with backoff. Rows are marked "sending" in small windows just before they go
out and their outcome is recorded right after, so a crash or restart resumes where it stopped and never
sends anyone a second copy. The price of never duplicating: a row caught "sending" by a crash may or may
not have reached its recipient (the Bot API offers no way to ask); such rows are counted as "uncertain"
in the author's report, at most two windows' worth (about 100 ms of sending) per crash.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.cache import TtlCache
from bot.services.roles import Access, NotAllowed
from bot.services.search import SearchService, geodesic_distances
from domain.clock import DEFAULT_TZ
from domain.statuses import AnnouncementStatus, DeliveryStatus
from domain.telegram_html import EntityParseError, ParsedText, parse_html
from domain.text import N_
from domain.values import GeoPoint, YizhanError
from storage.announcements_repo import AnnouncementRepository
from storage.ratelimit import RateLimiter
from storage.regions import RegionLookup

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_RADIUS_KM = 500.0
MAX_ATTEMPTS = 5
LIMITER_BACKOFF_S = 5.0  # how long a delivery waits when the rate limiter itself failed
CELL_PRECISION = 5  # geohash cells of about 4.9 km × 4.9 km
_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


# -- coarse cells ----------------------------------------------------------------------------------------
def geohash(lat: float, lon: float, precision: int = CELL_PRECISION) -> str:
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    chars: list[str] = []
    bits, value, even = 0, 0, True
    while len(chars) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            value = value * 2 + (lon >= mid)
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            value = value * 2 + (lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
        even = not even
        bits += 1
        if bits == 5:
            chars.append(_BASE32[value])
            bits, value = 0, 0
    return "".join(chars)


def geohash_centre(cell: str) -> tuple[float, float]:
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    even = True
    for char in cell:
        value = _BASE32.index(char)
        for shift in range(4, -1, -1):
            bit = (value >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2


# -- errors and values ----------------------------------------------------------------------------------
#: ASCII digits only: `str.isdigit` also takes "²" and "٤".
_REGION_PREFIX = re.compile(r"[0-9]{2}|[0-9]{4}|[0-9]{6}")


class AnnouncementError(YizhanError):
    """`reason` is English (logs, the bot's staff); `code` names the problem for an edge to word."""

    INVALID = "invalid"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    MARKUP = "markup"
    PAST = "past"
    RADIUS = "radius"
    MISSING = "missing"

    def __init__(self, reason: str, code: str = INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class DeliveryError(Exception):
    """Raised by a Transport; the broadcaster decides what follows."""


class RecipientBlocked(DeliveryError):
    pass


class RetryLater(DeliveryError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class TransientFailure(DeliveryError):
    pass


class PermanentFailure(DeliveryError):
    pass


@dataclass(frozen=True, slots=True)
class Audience:
    """Subscribers whose region starts with `region`, optionally within `radius_km` of a point."""

    region: str
    point: GeoPoint | None = None
    radius_km: float | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    total: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    uncertain: int = 0
    cancelled: int = 0

    @property
    def left(self) -> int:
        return max(0, self.total - self.sent - self.failed - self.blocked - self.uncertain - self.cancelled)


@dataclass(frozen=True, slots=True)
class AnnouncementView:
    id: int
    author_id: int
    text: str
    photo_file_id: str | None
    audience: Audience
    status: AnnouncementStatus
    scheduled_at: datetime | None
    created_at: datetime
    progress_chat_id: int | None = None
    progress_message_id: int | None = None
    counts: Counts = field(default_factory=Counts)
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """An announcement as its author follows it: counts, and how long what is left may take."""

    view: AnnouncementView
    #: Seconds to go at the recent pace while it is sending; None otherwise.
    eta_s: float | None
    #: Deliveries a second over the last half minute (the configured rate before the first one).
    rate: float


#: The callback data of the button on every announcement (`handlers/callbacks.py: UnsubscribeCb`).
UNSUBSCRIBE_DATA = "unsub"
UNSUBSCRIBE_LABEL = N_("🔕 Unsubscribe")


@dataclass(frozen=True, slots=True)
class RiderButton:
    text: str
    callback_data: str


@dataclass(frozen=True, slots=True)
class RiderMessage:
    """An announcement exactly as one rider receives it: the staff's Telegram HTML (sent with the HTML
    parse mode), the photo if any, and the buttons in the rider's language. The broadcaster sends this and
    the console previews this, so the two cannot drift apart."""

    text: str
    photo_file_id: str | None
    keyboard: tuple[tuple[RiderButton, ...], ...]


def rider_message(text: str, photo_file_id: str | None, gettext: Callable[[str], str]) -> RiderMessage:
    """`gettext` translates into the rider's language."""
    unsubscribe = RiderButton(gettext(UNSUBSCRIBE_LABEL), UNSUBSCRIBE_DATA)
    return RiderMessage(text, photo_file_id, ((unsubscribe,),))


def check_text(text: str, *, with_photo: bool = False) -> ParsedText:
    """The staff's text as Telegram will read it (plain text and entities), or AnnouncementError: empty, too
    long for one message (the length of the HTML, as the bot's composer counts it), or HTML that Telegram
    would refuse to parse, which would otherwise fail once per recipient."""
    text = text.strip()
    if not text:
        raise AnnouncementError("the announcement has no text", AnnouncementError.EMPTY)
    if len(text) > (MAX_CAPTION if with_photo else MAX_TEXT):
        raise AnnouncementError("the text is too long for one message", AnnouncementError.TOO_LONG)
    try:
        parsed = parse_html(text)
    except EntityParseError as exc:
        reason = f"the text is not valid Telegram HTML: {exc}"
        raise AnnouncementError(reason, AnnouncementError.MARKUP) from None
    if not parsed.text.strip():
        raise AnnouncementError("the announcement has no text", AnnouncementError.EMPTY)
    return parsed


def station_scope(regions: Sequence[str], station_region: str) -> str:
    """The region of an audience around a station: the staff member's region that holds it. A station outside
    every one of their regions keeps its own region, which `check_audience` then refuses."""
    return next((r for r in regions if station_region.startswith(r)), station_region)


def _view(row: object, counts: Counts | None = None) -> AnnouncementView:
    point = GeoPoint(row.lat, row.lon) if row.lat is not None and row.lon is not None else None  # type: ignore[attr-defined]
    return AnnouncementView(
        id=row.id,  # type: ignore[attr-defined]
        author_id=row.author_id,  # type: ignore[attr-defined]
        text=row.text,  # type: ignore[attr-defined]
        photo_file_id=row.photo_file_id,  # type: ignore[attr-defined]
        audience=Audience(row.region, point, row.radius_km),  # type: ignore[attr-defined]
        status=AnnouncementStatus(row.status),  # type: ignore[attr-defined]
        scheduled_at=row.scheduled_at,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        progress_chat_id=row.progress_chat_id,  # type: ignore[attr-defined]
        progress_message_id=row.progress_message_id,  # type: ignore[attr-defined]
        counts=counts or Counts(total=row.total),  # type: ignore[attr-defined]
        started_at=row.started_at,  # type: ignore[attr-defined]
        finished_at=row.finished_at,  # type: ignore[attr-defined]
    )


def _counts(raw: dict[str, int], total: int) -> Counts:
    return Counts(
        total=total,
        sent=raw.get("sent", 0),
        failed=raw.get("failed", 0),
        blocked=raw.get("blocked", 0),
        uncertain=raw.get("uncertain", 0),
        cancelled=raw.get("cancelled", 0),
    )


def _cells_within(audience: Audience, cells: set[str]) -> set[str]:
    """The cells whose centre lies within the audience's radius; each distinct cell is measured once."""
    if not cells or audience.point is None or audience.radius_km is None:
        return set()
    ordered = sorted(cells)
    centres = np.array([geohash_centre(cell) for cell in ordered])
    distances = geodesic_distances(audience.point.lat, audience.point.lon, centres[:, 0], centres[:, 1])
    limit = audience.radius_km * 1000
    return {cell for cell, distance in zip(ordered, distances, strict=True) if distance <= limit}


# -- subscriptions --------------------------------------------------------------------------------------
class SubscriptionService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        search: SearchService,
        regions: RegionLookup | None = None,
    ) -> None:
        self.sessions = sessions
        self.search = search
        self.regions = regions if regions is not None else RegionLookup()
        self._settled: TtlCache[int, bool] = TtlCache(max_size=200_000)

    async def subscribe_near(self, user_id: int, point: GeoPoint, at: datetime) -> str:
        """Subscribe with the ~5 km cell of `point` and its district (the point itself is not kept), so that
        announcements to a district reach the riders there; returns the cell."""
        cell = geohash(point.lat, point.lon)
        region = await asyncio.to_thread(self._district_of, point)
        async with self.sessions() as session, session.begin():
            await AnnouncementRepository(session).subscribe(user_id, cell, region, at)
        return cell

    async def subscribe_region(self, user_id: int, region: str, at: datetime) -> None:
        if not _REGION_PREFIX.fullmatch(region):
            raise AnnouncementError("a region is an adcode prefix of 2, 4 or 6 digits")
        async with self.sessions() as session, session.begin():
            await AnnouncementRepository(session).subscribe(user_id, "", region, at)

    async def unsubscribe(self, user_id: int, at: datetime) -> bool:
        async with self.sessions() as session, session.begin():
            return await AnnouncementRepository(session).unsubscribe(user_id, at)

    async def is_subscribed(self, user_id: int) -> bool:
        async with self.sessions() as session:
            row = await AnnouncementRepository(session).subscription(user_id)
        return bool(row and row.active)

    async def offer_once(self, user_id: int, at: datetime) -> bool:
        """True exactly once per user (and never for someone already subscribed). Every search asks, so
        users already settled are remembered in memory and cost no database round trip."""
        if self._settled.get(user_id):
            return False
        self._settled.put(user_id, True)
        async with self.sessions() as session, session.begin():
            repo = AnnouncementRepository(session)
            if await repo.subscription(user_id) is not None:
                await repo.mark_offered(user_id, at)
                return False
            return await repo.mark_offered(user_id, at)

    def _district_of(self, point: GeoPoint) -> str:
        # Outside China or at sea there is no district: such a rider gets announcements to everyone only.
        region = self.regions.index().lookup(point.lat, point.lon)
        return region.adcode if region is not None else ""


# -- composing and managing -----------------------------------------------------------------------------
class AnnouncementService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        default_tz: str = DEFAULT_TZ,
        regions: RegionLookup | None = None,
    ) -> None:
        self.sessions = sessions
        self.default_tz = default_tz
        self.regions = regions if regions is not None else RegionLookup()

    @staticmethod
    def check_audience(access: Access, audience: Audience) -> None:
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        if not any(audience.region.startswith(prefix) for prefix in access.regions):
            raise NotAllowed(f"user {access.user_id} may not address region {audience.region or 'all'}")
        if audience.region and not _REGION_PREFIX.fullmatch(audience.region):
            raise AnnouncementError("a region is an adcode prefix of 2, 4 or 6 digits")
        if (audience.point is None) != (audience.radius_km is None):
            raise AnnouncementError("a radius needs a centre and a centre needs a radius")
        if audience.radius_km is not None and not (
            math.isfinite(audience.radius_km) and 0 < audience.radius_km <= MAX_RADIUS_KM
        ):
            raise AnnouncementError("the radius is between 0 and 500 km", AnnouncementError.RADIUS)

    async def recipients(self, access: Access, audience: Audience) -> list[int]:
        self.check_audience(access, audience)
        async with self.sessions() as session:
            subscribers = await AnnouncementRepository(session).subscribers(audience.region)
        if audience.point is None or audience.radius_km is None:
            return sorted(user_id for user_id, _ in subscribers)
        near = _cells_within(audience, {cell for _, cell in subscribers if cell})
        return sorted(user_id for user_id, cell in subscribers if cell in near)

    async def audience_size(self, access: Access, audience: Audience) -> int:
        """How many `recipients` there are, from a count per cell: the console asks as the form is typed."""
        self.check_audience(access, audience)
        async with self.sessions() as session:
            per_cell = await AnnouncementRepository(session).subscribers_per_cell(audience.region)
        if audience.point is None or audience.radius_km is None:
            return sum(per_cell.values())
        near = _cells_within(audience, {cell for cell in per_cell if cell})
        return sum(count for cell, count in per_cell.items() if cell in near)

    async def create(
        self,
        access: Access,
        text: str,
        audience: Audience,
        at: datetime,
        *,
        photo_file_id: str | None = None,
        scheduled_at: datetime | None = None,
        progress_chat_id: int | None = None,
        progress_message_id: int | None = None,
    ) -> AnnouncementView:
        text = text.strip()
        check_text(text, with_photo=bool(photo_file_id))
        if scheduled_at is not None and scheduled_at <= at:
            raise AnnouncementError("the scheduled time has passed", AnnouncementError.PAST)
        recipients = await self.recipients(access, audience)
        async with self.sessions() as session, session.begin():
            repo = AnnouncementRepository(session)
            row = await repo.add(
                author_id=access.user_id,
                text=text,
                photo_file_id=photo_file_id,
                region=audience.region,
                lat=audience.point.lat if audience.point else None,
                lon=audience.point.lon if audience.point else None,
                radius_km=audience.radius_km,
                status=AnnouncementStatus.SCHEDULED if scheduled_at else AnnouncementStatus.SENDING,
                scheduled_at=scheduled_at,
                progress_chat_id=progress_chat_id,
                progress_message_id=progress_message_id,
                total=len(recipients),
                created_at=at,
            )
            await repo.enqueue(row.id, recipients)
            return _view(row)

    async def get(self, announcement_id: int, access: Access) -> AnnouncementView:
        async with self.sessions() as session:
            repo = AnnouncementRepository(session)
            row = await repo.get(announcement_id)
            if row is None:
                raise AnnouncementError("no such announcement", AnnouncementError.MISSING)
            self._require_owner(access, row)
            return _view(row, _counts(await repo.counts(row.id), row.total))

    async def progress(
        self, announcement_id: int, access: Access, at: datetime, nominal_rate: float
    ) -> Progress:
        """Counts and, while sending, the time left at the pace of the last half minute (the configured
        rate until the first delivery): a pause or a `retry_after` shows in the estimate within seconds."""
        view = await self.get(announcement_id, access)
        if view.status != AnnouncementStatus.SENDING or view.started_at is None:
            return Progress(view, None, 0.0)
        window = min(30.0, max((at - view.started_at).total_seconds(), 0.0))
        rate = nominal_rate
        if window >= 1.0:
            async with self.sessions() as session:
                recent = await AnnouncementRepository(session).sent_count_since(
                    announcement_id, at - timedelta(seconds=window)
                )
            if recent:
                rate = recent / window
        return Progress(view, view.counts.left / max(rate, 1e-6), rate)

    async def timezone_of(self, region: str) -> ZoneInfo:
        """The timezone most of the region's stations keep (China keeps one, so: the default)."""
        async with self.sessions() as session:
            name = await AnnouncementRepository(session).region_timezone(region)
        try:
            return ZoneInfo(name or self.default_tz)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("stations of region %r name an unknown timezone %r", region, name)
            return ZoneInfo(self.default_tz)

    async def districts(self, access: Access) -> list[tuple[str, str]]:
        """(adcode, name) of the districts with stations that this staff member may address."""
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        async with self.sessions() as session:
            codes = await AnnouncementRepository(session).station_regions(access.regions)
        index = await asyncio.to_thread(self.regions.index)
        return [(code, index.name_of(code) or code) for code in codes]

    @staticmethod
    def _require_owner(access: Access, row: object) -> None:
        if not access.is_staff or not any(row.region.startswith(p) for p in access.regions):  # type: ignore[attr-defined]
            raise NotAllowed(f"user {access.user_id} may not manage this announcement")

    async def _transition(
        self,
        announcement_id: int,
        access: Access,
        status: AnnouncementStatus,
        allowed: Sequence[AnnouncementStatus],
        at: datetime | None = None,
    ) -> bool:
        async with self.sessions() as session, session.begin():
            repo = AnnouncementRepository(session)
            row = await repo.get(announcement_id)
            if row is None:
                raise AnnouncementError("no such announcement", AnnouncementError.MISSING)
            self._require_owner(access, row)
            if (
                status == AnnouncementStatus.SENDING
                and at is not None
                and row.scheduled_at is not None
                and row.scheduled_at > at
            ):
                # Resuming one paused before its time: it waits for its time again.
                status = AnnouncementStatus.SCHEDULED
            changed = await repo.set_status(announcement_id, status, allowed)
            if changed and status == AnnouncementStatus.CANCELLED:
                await repo.cancel_pending(announcement_id)
            return changed

    async def pause(self, announcement_id: int, access: Access) -> bool:
        return await self._transition(
            announcement_id,
            access,
            AnnouncementStatus.PAUSED,
            (AnnouncementStatus.SENDING, AnnouncementStatus.SCHEDULED),
        )

    async def resume(self, announcement_id: int, access: Access, at: datetime | None = None) -> bool:
        """Paused → sending, or back to scheduled when resumed (`at`) before its scheduled time."""
        return await self._transition(
            announcement_id, access, AnnouncementStatus.SENDING, (AnnouncementStatus.PAUSED,), at
        )

    async def cancel(self, announcement_id: int, access: Access) -> bool:
        return await self._transition(
            announcement_id,
            access,
            AnnouncementStatus.CANCELLED,
            (AnnouncementStatus.SENDING, AnnouncementStatus.SCHEDULED, AnnouncementStatus.PAUSED),
        )

    async def list(self, access: Access, limit: int = 20, offset: int = 0) -> list[AnnouncementView]:
        """The announcements addressed inside this staff member's regions, newest first."""
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        async with self.sessions() as session:
            repo = AnnouncementRepository(session)
            rows = await repo.list_in(access.regions, limit, offset)
            return [_view(r, _counts(await repo.counts(r.id), r.total)) for r in rows]


# -- delivery ---------------------------------------------------------------------------------------------
class Outcome(NamedTuple):
    """One delivery attempt's outcome: the delivery's new status and the values to record with it."""

    delivery_id: int
    user_id: int
    status: DeliveryStatus
    values: dict[str, object]


def _release(slots: list[asyncio.Task[None]]) -> None:
    """Give up rate-limiter slots reserved for deliveries that will not happen (the slots stay used)."""
    for slot in slots:
        if not slot.done():
            slot.cancel()
        elif not slot.cancelled():
            slot.exception()  # retrieved, so that a failed reservation is not reported as unhandled


class Transport(Protocol):
    async def deliver(self, user_id: int, announcement: AnnouncementView) -> None: ...


class ProgressSink(Protocol):
    async def report(self, announcement: AnnouncementView, eta_s: float | None, final: bool) -> None: ...


class Broadcaster:
    """Works through due announcements until told to stop; safe to run in several processes only with a
    shared (Redis) limiter, and in one process per announcement at a time (the bot or `yizhan worker`)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: Transport,
        limiter: RateLimiter,
        rate: float,
        *,
        progress: ProgressSink | None = None,
        clock: Callable[[], datetime],
        progress_every: float = 2.0,
        idle_poll: float = 1.0,
        on_delivery: Callable[[str], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.limiter = limiter
        self.rate = rate
        # How many rows are marked "sending" at once: about 50 ms of sending, at least one. Two windows are
        # in flight, so a crash can leave at most twice this many rows uncertain.
        self.window = max(1, min(64, int(rate * 0.05)))
        self.progress = progress
        self.clock = clock
        self.progress_every = progress_every
        self.idle_poll = idle_poll
        # Told each attempt's outcome: sent, failed, blocked or pending (retried later); metrics count them.
        self.on_delivery = on_delivery

    async def recover(self) -> int:
        """After a crash: rows caught "sending" may have gone out; never send them again."""
        async with self.sessions() as session, session.begin():
            uncertain = await AnnouncementRepository(session).mark_uncertain()
        if uncertain:
            log.warning("%d deliveries were in flight when the sender stopped; marked uncertain", uncertain)
        return uncertain

    async def run(self, stop: asyncio.Event) -> None:
        await self.recover()
        while not stop.is_set():
            worked = await self.run_once(stop)
            if not worked:
                try:
                    await asyncio.wait_for(stop.wait(), self.idle_poll)
                except TimeoutError:
                    pass

    async def run_once(self, stop: asyncio.Event | None = None) -> bool:
        async with self.sessions() as session, session.begin():
            repo = AnnouncementRepository(session)
            due = await repo.due(self.clock())
            for row in due:
                if row.status == AnnouncementStatus.SCHEDULED:
                    await repo.set_status(
                        row.id,
                        AnnouncementStatus.SENDING,
                        (AnnouncementStatus.SCHEDULED,),
                        started_at=self.clock(),
                    )
                elif row.started_at is None:
                    await repo.update_values(row.id, started_at=self.clock())
            ids = [row.id for row in due]
        for announcement_id in ids:
            if stop is not None and stop.is_set():
                break
            await self.send_announcement(announcement_id, stop)
        return bool(ids)

    async def _load(self, announcement_id: int) -> AnnouncementView | None:
        async with self.sessions() as session:
            repo = AnnouncementRepository(session)
            row = await repo.get(announcement_id)
            if row is None:
                return None
            return _view(row, _counts(await repo.counts(announcement_id), row.total))

    async def send_announcement(self, announcement_id: int, stop: asyncio.Event | None = None) -> None:
        """Send until done, paused or cancelled.

        Two windows are in flight at once: while one is sending, the next one is claimed and its
        deliveries already hold their rate-limiter slots. The limiter has no burst, so a slot nobody is
        waiting for is lost for good; the work between windows must therefore never leave it idle:

        - that work is one transaction (`_record_and_claim`): record the outcomes of the window that
          finished, read the announcement's status, claim the next rows. Rows leave "sending" in the same
          transaction that puts the next ones in it, so at most two windows are ever "sending" (what a
          crash can leave uncertain);
        - while the flow is steady (the last claim filled a window), the slots of the window after it are
          reserved at once, long before its rows can be claimed (once the oldest window is recorded), so
          that slow replies or a slow database delay those messages (they then go at once, never more
          than a window of them) instead of losing their slots;
        - the recipients' languages are looked up while the first deliveries wait for their slots."""
        view = await self._load(announcement_id)
        if view is None:
            return
        started = last_report = time.monotonic()
        sent_here = 0
        in_flight: set[asyncio.Task[list[Outcome]]] = set()
        finished: list[Outcome] = []
        slots: list[asyncio.Task[None]] = []
        try:
            while stop is None or not stop.is_set():
                status, claimed = await self._record_and_claim(announcement_id, finished)
                sent_here += sum(1 for outcome in finished if outcome.status is DeliveryStatus.SENT)
                finished = []
                if status != AnnouncementStatus.SENDING:
                    return
                if claimed:
                    # Reserved here, in order: this window's slots come before the next one's.
                    window_slots, slots = slots[: len(claimed)], slots[len(claimed) :]
                    window_slots += self._reserve(len(claimed) - len(window_slots))
                    in_flight.add(asyncio.create_task(self._send_window(claimed, view, window_slots)))
                _release(slots)
                slots = []
                if len(claimed) == self.window:
                    # The flow is steady: the next window will most likely be full too; its slots are
                    # taken now, while this one and the one before it are sending.
                    slots = self._reserve(self.window)
                if not claimed and not in_flight:
                    now = self.clock()
                    async with self.sessions() as session:
                        retry_at = await AnnouncementRepository(session).next_attempt(announcement_id)
                    if retry_at is None:
                        await self._finish(announcement_id)
                        return
                    await asyncio.sleep(min(max((retry_at - now).total_seconds(), 0.05), self.idle_poll))
                    continue
                if len(in_flight) >= 2 or not claimed:
                    done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        finished.extend(task.result())
                if self.progress is not None and time.monotonic() - last_report >= self.progress_every:
                    last_report = time.monotonic()
                    fresh = await self._load(announcement_id)
                    if fresh is not None:
                        elapsed = time.monotonic() - started
                        speed = sent_here / elapsed if elapsed > 0 and sent_here else self.rate
                        await self._report(fresh, fresh.counts.left / max(speed, 1e-6), final=False)
        finally:
            _release(slots)
            # Let what is in flight finish and be recorded (a pause or a stop never abandons a window).
            if in_flight:
                for result in await asyncio.gather(*in_flight, return_exceptions=True):
                    if isinstance(result, list):
                        finished.extend(result)
            if finished:
                async with self.sessions() as session, session.begin():
                    await self._record(AnnouncementRepository(session), finished)

    async def _record_and_claim(
        self, announcement_id: int, finished: list[Outcome]
    ) -> tuple[str | None, list[tuple[int, int, int]]]:
        """Record `finished`, then claim the next window if the announcement is still "sending"; one
        transaction. Returns the status and the claimed (delivery id, user id, attempts)."""
        async with self.sessions() as session, session.begin():
            repo = AnnouncementRepository(session)
            await self._record(repo, finished)
            row = await repo.get(announcement_id)
            if row is None or row.status != AnnouncementStatus.SENDING:
                return (row.status if row is not None else None), []
            return row.status, await repo.claim(announcement_id, self.clock(), self.window)

    async def _record(self, repo: AnnouncementRepository, finished: list[Outcome]) -> None:
        if not finished:
            return
        await repo.finish([(outcome.delivery_id, outcome.status, outcome.values) for outcome in finished])
        blocked_at = self.clock()
        for outcome in finished:
            if outcome.status is DeliveryStatus.BLOCKED:
                await repo.block(outcome.user_id, blocked_at)

    def _reserve(self, count: int) -> list[asyncio.Task[None]]:
        """Reserve `count` rate-limiter slots now: each task ends when its slot has come."""
        return [asyncio.ensure_future(self.limiter.acquire()) for _ in range(count)]

    async def _send_window(
        self, claimed: list[tuple[int, int, int]], view: AnnouncementView, slots: list[asyncio.Task[None]]
    ) -> list[Outcome]:
        """Deliver one window, each delivery in its rate-limiter slot, and return the outcomes (recording
        them is the caller's)."""
        prepare = getattr(self.transport, "prepare", None)
        user_ids = [user_id for _, user_id, _ in claimed]
        ready = asyncio.ensure_future(prepare(user_ids)) if prepare is not None else None
        try:
            outcomes = await asyncio.gather(
                *(
                    self._attempt(delivery, view, slot, ready)
                    for delivery, slot in zip(claimed, slots, strict=True)
                )
            )
        finally:
            _release(slots)  # all used, unless this window was cancelled
            if ready is not None:
                if not ready.done():
                    ready.cancel()
                elif not ready.cancelled() and (error := ready.exception()) is not None:
                    # Each delivery then looks its recipient up on its own.
                    log.warning("looking up a window's recipients failed: %r", error)
        if self.on_delivery is not None:
            for outcome in outcomes:
                try:
                    self.on_delivery(outcome.status)
                except Exception:
                    log.warning("delivery observer failed", exc_info=True)
        return outcomes

    async def _attempt(
        self,
        claimed: tuple[int, int, int],
        view: AnnouncementView,
        slot: asyncio.Task[None],
        ready: asyncio.Future[None] | None,
    ) -> Outcome:
        """One delivery attempt, once its rate-limiter slot has come and the window's languages are known;
        never raises an Exception (its outcome says what happened)."""
        delivery_id, user_id, attempts = claimed
        try:
            await slot
        except Exception as exc:
            # The shared limiter is unreachable (Redis): nothing was sent, so this is no attempt; try
            # again a little later.
            log.warning("rate limiter failed (%r); delivery %s waits", exc, delivery_id)
            later = self.clock() + timedelta(seconds=LIMITER_BACKOFF_S)
            return Outcome(
                delivery_id,
                user_id,
                DeliveryStatus.PENDING,
                {"next_attempt_at": later, "last_error": repr(exc)[:300]},
            )
        if ready is not None and not ready.done():
            await asyncio.wait((ready,))
        now = self.clock()
        try:
            await self.transport.deliver(user_id, view)
        except RecipientBlocked:
            values: dict[str, object] = {"attempts": attempts + 1, "last_error": "blocked the bot"}
            return Outcome(delivery_id, user_id, DeliveryStatus.BLOCKED, values)
        except RetryLater as exc:
            # Telegram asked everyone to wait: stop all sending, then try this one again.
            try:
                await self.limiter.pause(exc.seconds)
            except Exception:
                log.warning("could not pause the rate limiter for %g s", exc.seconds, exc_info=True)
            return Outcome(
                delivery_id, user_id, DeliveryStatus.PENDING, {"last_error": f"retry after {exc.seconds:g} s"}
            )
        except PermanentFailure as exc:
            return Outcome(
                delivery_id,
                user_id,
                DeliveryStatus.FAILED,
                {"attempts": attempts + 1, "last_error": str(exc)[:300]},
            )
        except Exception as exc:  # transient: network, 5xx, timeouts
            return self._retry(delivery_id, user_id, attempts, exc, now)
        return Outcome(delivery_id, user_id, DeliveryStatus.SENT, {"attempts": attempts + 1, "sent_at": now})

    @staticmethod
    def _retry(delivery_id: int, user_id: int, attempts: int, exc: Exception, now: datetime) -> Outcome:
        """A transient failure: try again after an exponential backoff, up to MAX_ATTEMPTS attempts."""
        attempts += 1
        if attempts >= MAX_ATTEMPTS:
            return Outcome(
                delivery_id,
                user_id,
                DeliveryStatus.FAILED,
                {"attempts": attempts, "last_error": repr(exc)[:300]},
            )
        backoff = timedelta(seconds=min(300, 2**attempts))
        log.info("delivery %s to %s failed (%r); retry in %s", delivery_id, user_id, exc, backoff)
        return Outcome(
            delivery_id,
            user_id,
            DeliveryStatus.PENDING,
            {"attempts": attempts, "next_attempt_at": now + backoff, "last_error": repr(exc)[:300]},
        )

    async def _finish(self, announcement_id: int) -> None:
        async with self.sessions() as session, session.begin():
            finished = await AnnouncementRepository(session).set_status(
                announcement_id,
                AnnouncementStatus.DONE,
                (AnnouncementStatus.SENDING,),
                finished_at=self.clock(),
            )
        if finished:
            view = await self._load(announcement_id)
            if view is not None:
                await self._report(view, 0.0, final=True)

    async def _report(self, view: AnnouncementView, eta_s: float | None, final: bool) -> None:
        if self.progress is None:
            return
        try:
            await self.progress.report(view, None if eta_s is None or math.isinf(eta_s) else eta_s, final)
        except Exception:
            log.warning("progress report for announcement %s failed", view.id, exc_info=True)
