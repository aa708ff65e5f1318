"""The union office's station work from a browser: find stations, export a selection, edit one, change its
lifecycle, read its audit trail, cases and ratings.

Every method takes the staff member's `Access` and narrows to their regions on the server: a search never
returns, and an export never writes, a station of another region, and a station of another region is
`NotAllowed` whatever its code. An edit is checked by the importer's own record checks
(`storage.importers.check_station`), its region derived from the position as an import derives it, and it
goes through `StationAdminService`, so it is audited and reaches this process's index and cache and the
other processes' (change feed) as soon as it commits.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.ratings import Comment
from bot.services.regions import derive_regions
from bot.services.roles import Access, NotAllowed
from bot.services.station_admin import STALE_AFTER, AuditEntry, StationAdminService
from bot.services.stations import StationService
from domain.messages import N_, Text
from domain.statuses import CaseStatus
from domain.values import AMENITY_KEYS, Station, StationStatus, YizhanError
from storage.console_repo import ConsoleAccountRepository
from storage.importers import XlsxExport, check_station, csv_text
from storage.reports_repo import RatingRepository, ReportRepository
from storage.stations_repo import StationFilter, StationRepository, record_from_raw

#: What a clerk types as a district: an adcode prefix (44 Guangdong, 4401 Guangzhou, 440106 Tianhe), or a
#: name without digits (天河区, 天河, 广州), looked up in the regions (`StationConsoleService.resolve`).
_DISTRICT = re.compile(r"[0-9]{2,6}")
_DISTRICT_NAME = re.compile(r"[^\W\d_]{1,20}")
#: Longest search text (a name or an address fragment; longer is a paste gone wrong).
MAX_SEARCH_TEXT = 100
PAGE_SIZE = 50
#: The `hours` filter's one value: stations open around the clock.
ALWAYS_OPEN = "24_7"
MAX_PAGE_SIZE = 200
#: Most stations an .xlsx export holds: openpyxl writes about a thousand rows a second
#: (bench.console_stations), so a larger selection goes to the CSV export, which streams at any size.
XLSX_MAX_ROWS = 30_000
#: Beyond this many matches a search says "more than": counting them all would read every one.
COUNT_LIMIT = 10_000
#: Codes a paging cursor may hold: a station code's column size.
_MAX_CODE = 64
#: The fields of the station form, in its order; `position` carries the problems of lat and lon.
EDIT_FIELDS: tuple[str, ...] = (
    "name",
    "address",
    "lat",
    "lon",
    "host",
    "opening_hours",
    "amenities",
    "phone",
    "manager",
    "timezone",
)
#: The stored fields an edit may change (the region follows the position; the hours keep their original).
_CHANGEABLE: tuple[str, ...] = (
    "name",
    "address",
    "lat",
    "lon",
    "region",
    "host",
    "opening_hours",
    "opening_hours_text",
    "amenities",
    "phone",
    "manager",
    "timezone",
)
#: How the form's fields are named in the importer's messages ("the station name (…) is empty").
FIELD_LABELS: dict[str, str] = {
    "code": N_("code"),
    "name": N_("station name"),
    "address": N_("address"),
    "lat": N_("latitude"),
    "lon": N_("longitude"),
    "host": N_("host organisation"),
    "opening_hours": N_("opening hours"),
    "amenities": N_("amenities"),
    "phone": N_("phone"),
    "manager": N_("manager"),
    "timezone": N_("timezone"),
}


class InvalidStationQuery(YizhanError):
    """A search parameter that cannot be used; `field` names it and `message` says why (a `Text`)."""

    def __init__(self, field_name: str, message: Text) -> None:
        super().__init__(str(message))
        self.field = field_name
        self.message = message


class ExportTooLarge(YizhanError):
    """More stations selected than an .xlsx export holds; `message` says so (a `Text`)."""

    def __init__(self, limit: int) -> None:
        self.message = Text(
            N_(
                "more than {limit} stations are selected, the most an Excel export holds: "
                "narrow the search or export CSV"
            ),
            limit=f"{limit:,}",
        )
        super().__init__(str(self.message))


class StationEditRejected(YizhanError):
    """An edit that the import's checks refuse: `problems` maps a form field (or `position`, for lat and
    lon together) to its problems, each a `Text` to word in the clerk's language. Nothing was changed."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{name}: {', '.join(found)}" for name, found in problems.items()))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class StationQuery:
    """A staff search: text in the code, name or address; a district (adcode prefix); a status; an
    amenity. `parse` checks what a browser sends; `params` gives it back for links (paging, exports)."""

    text: str = ""
    district: str = ""
    status: StationStatus | None = None
    amenity: str | None = None
    #: Only stations open around the clock (`hours=24_7`, the dashboard's link).
    always_open: bool = False
    #: Only stations in service not verified for 180 days (`stale=1`, the dashboard's link).
    stale: bool = False
    #: The adcode prefixes `district` stands for: itself when it is one; those of the places it names once
    #: resolved (`StationConsoleService.resolve`); None for a name not resolved yet.
    districts: tuple[str, ...] | None = ()

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> StationQuery:
        text = " ".join(str(params.get("q", "")).split())
        if len(text) > MAX_SEARCH_TEXT:
            raise InvalidStationQuery(
                "q", Text(N_("search for at most {limit} characters"), limit=MAX_SEARCH_TEXT)
            )
        district = str(params.get("district", "")).strip()
        districts: tuple[str, ...] | None = ()
        if _DISTRICT.fullmatch(district):
            districts = (district,)
        elif _DISTRICT_NAME.fullmatch(district):
            districts = None
        elif district:
            raise InvalidStationQuery(
                "district",
                Text(
                    N_(
                        "a district is a name, such as 天河区 or 广州, or an adcode or its start: 2 to 6 "
                        "digits, such as 44, 4401 or 440106"
                    )
                ),
            )
        status_text = str(params.get("status", "")).strip()
        try:
            status = StationStatus(status_text) if status_text else None
        except ValueError:
            raise InvalidStationQuery("status", Text(N_("unknown status"))) from None
        amenity = str(params.get("amenity", "")).strip() or None
        if amenity is not None and amenity not in AMENITY_KEYS:
            raise InvalidStationQuery("amenity", Text(N_("unknown amenity")))
        hours = str(params.get("hours", "")).strip()
        if hours not in ("", ALWAYS_OPEN):
            raise InvalidStationQuery("hours", Text(N_("unknown hours filter")))
        stale = str(params.get("stale", "")).strip()
        if stale not in ("", "0", "1"):
            raise InvalidStationQuery("stale", Text(N_("unknown filter")))
        return cls(text, district, status, amenity, hours == ALWAYS_OPEN, stale == "1", districts)

    def params(self) -> dict[str, str]:
        out = {"q": self.text, "district": self.district}
        out["status"] = self.status.value if self.status else ""
        out["amenity"] = self.amenity or ""
        out["hours"] = ALWAYS_OPEN if self.always_open else ""
        out["stale"] = "1" if self.stale else ""
        return {key: value for key, value in out.items() if value}


def scoped_regions(allowed: Sequence[str], district: str) -> tuple[str, ...]:
    """The region prefixes to search: the staff member's regions narrowed to `district`. A district
    inside one of them is searched as it is; a wider one only where it covers theirs; another none."""
    if not district:
        return tuple(allowed)
    narrowed: list[str] = []
    for prefix in allowed:
        if district.startswith(prefix):
            return (district,)
        if prefix.startswith(district):
            narrowed.append(prefix)
    return tuple(narrowed)


def _cursor(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > _MAX_CODE:
        raise InvalidStationQuery("page", Text(N_("this page link is not valid; search again")))
    return value


def _csv_part(rows: Sequence[Any], header: bool) -> str:
    return csv_text(map(record_from_raw, rows), header)


@dataclass(frozen=True, slots=True)
class StationPage:
    """One page of a search in code order, the number of stations the search finds, and the codes to page
    from: `next_after` for the following page, `previous_before` for the one before (None at the ends)."""

    stations: list[Station]
    total: int
    next_after: str | None
    previous_before: str | None
    #: `total` is a lower bound: the search finds more than COUNT_LIMIT stations.
    more_than: bool = False


@dataclass(frozen=True, slots=True)
class CaseSummary:
    id: int
    kind: str
    status: CaseStatus
    reporters: int
    on_site: int
    proposal: str
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class StationRatings:
    average: float | None
    count: int
    #: Ratings per number of stars, 1 to 5.
    stars: dict[int, int] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StationFile:
    """Everything the station page shows besides the form."""

    station: Station
    #: The district's name (`天河区, 广州市, 广东省`), or "" when the region is unknown.
    region_name: str
    history: list[AuditEntry]
    cases: list[CaseSummary]
    ratings: StationRatings
    #: The console username of each actor of `history` that has one (Telegram staff without an account
    #: have none).
    actors: dict[int, str] = field(default_factory=dict)


class StationConsoleService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stations: StationService,
        admin: StationAdminService,
    ) -> None:
        self.sessions = sessions
        self.stations = stations
        self.admin = admin

    # -- finding ----------------------------------------------------------------------------------------
    async def resolve(self, query: StationQuery, access: Access) -> StationQuery:
        """`query` with the places its district names looked up, within `access`'s regions. Raises
        `InvalidStationQuery` when no province, city or district of theirs has that name."""
        if query.districts is not None:
            return query
        index = await asyncio.to_thread(self.stations.regions.index)
        named = index.prefixes_named(query.district)
        mine = tuple(prefix for prefix in named if scoped_regions(access.regions, prefix))
        if not mine:
            raise InvalidStationQuery(
                "district",
                Text(N_("no province, city or district called {name} in your regions"), name=query.district),
            )
        return replace(query, districts=mine)

    @staticmethod
    def selection(access: Access, query: StationQuery, at: datetime | None = None) -> StationFilter:
        """What `access` may see of `query` (`at`: the instant `stale` counts back from); a district
        name must be resolved first (`resolve`)."""
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        if query.stale and at is None:
            raise ValueError("a search for stale stations needs the instant")
        if query.districts is None:
            raise ValueError("a district name must be resolved first")
        regions = (
            tuple(dict.fromkeys(r for d in query.districts for r in scoped_regions(access.regions, d)))
            if query.districts
            else tuple(access.regions)
        )
        return StationFilter(
            regions=regions,
            text=query.text,
            status=query.status,
            amenity=query.amenity,
            always_open=query.always_open,
            verified_before=at - STALE_AFTER if query.stale and at is not None else None,
        )

    async def search(
        self,
        access: Access,
        query: StationQuery,
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = PAGE_SIZE,
        at: datetime | None = None,
    ) -> StationPage:
        """A page of the stations `access` may see that match `query`, in code order."""
        selection = self.selection(access, await self.resolve(query, access), at)
        after, before = _cursor(after), _cursor(before)
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        async with self.sessions() as session:
            repo = StationRepository(session)
            stations = await repo.search_page(selection, after=after, before=before, limit=limit + 1)
            total = await repo.count_matching(selection, COUNT_LIMIT + 1)
        more = len(stations) > limit
        if before is not None:
            # Read backwards: the extra station is the first one, and a later page surely exists.
            if more:
                stations = stations[1:]
            next_after = stations[-1].code if stations else None
            previous_before = stations[0].code if more and stations else None
        else:
            stations = stations[:limit]
            next_after = stations[-1].code if more and stations else None
            previous_before = stations[0].code if after is not None and stations else None
        if total > COUNT_LIMIT:
            return StationPage(stations, COUNT_LIMIT, next_after, previous_before, more_than=True)
        return StationPage(stations, total, next_after, previous_before)

    async def export_csv(
        self, access: Access, query: StationQuery, at: datetime | None = None
    ) -> AsyncIterator[bytes]:
        """The selection as the CSV of an export (storage/importers.py: columns, BOM, formula guards),
        part by part as it is read: the whole network never sits in memory."""
        selection = self.selection(access, await self.resolve(query, access), at)
        header = True
        async with self.sessions() as session:
            async for rows in StationRepository(session).stream_matching(selection):
                text = await asyncio.to_thread(_csv_part, rows, header)
                header = False
                yield text.encode()
        if header:  # nothing selected: the header alone
            yield csv_text((), True).encode()

    async def export_xlsx(self, access: Access, query: StationQuery, at: datetime | None = None) -> bytes:
        """The selection as an .xlsx workbook with the export's columns (storage/importers.py: XlsxExport)."""
        selection = self.selection(access, await self.resolve(query, access), at)
        async with self.sessions() as session:
            count = await StationRepository(session).count_matching(selection, XLSX_MAX_ROWS + 1)
        if count > XLSX_MAX_ROWS:
            raise ExportTooLarge(XLSX_MAX_ROWS)
        export = await asyncio.to_thread(XlsxExport)
        async with self.sessions() as session:
            async for rows in StationRepository(session).stream_matching(selection):
                await asyncio.to_thread(export.add, map(record_from_raw, rows))

        def save() -> bytes:
            out = io.BytesIO()
            export.save(out)
            return out.getvalue()

        return await asyncio.to_thread(save)

    # -- one station ------------------------------------------------------------------------------------
    async def station(self, code: str, access: Access) -> Station:
        """A station by code as stored now; `NotAllowed` outside the staff member's regions."""
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        station = await self.stations.get(code)
        access.require_staff_for(station.region)
        return station

    async def station_file(
        self, code: str, access: Access, history: int = 30, cases: int = 20
    ) -> StationFile:
        station = await self.station(code, access)
        audit = await self.admin.history(station.id, access, history)
        async with self.sessions() as session:
            case_rows = await ReportRepository(session).cases_of_station(station.id, cases)
            ratings = RatingRepository(session)
            average, count = await ratings.summary(station.id)
            stars = await ratings.stars_histogram(station.id)
            comment_rows = await ratings.recent_comments(station.id, 10)
            actors = await ConsoleAccountRepository(session).usernames_of_actors(
                sorted({entry.actor_id for entry in audit if entry.actor_id is not None})
            )
        region_name = await asyncio.to_thread(self._region_name, station.region)
        return StationFile(
            station=station,
            region_name=region_name,
            history=audit,
            cases=[
                CaseSummary(
                    id=row.id,
                    kind=row.kind,
                    status=CaseStatus(row.status),
                    reporters=row.reporters,
                    on_site=row.on_site,
                    proposal=row.proposal,
                    created_at=row.created_at,
                    decided_at=row.decided_at,
                )
                for row in case_rows
            ],
            ratings=StationRatings(
                average,
                count,
                stars,
                [Comment(r.stars, r.comment, r.updated_at) for r in comment_rows],
            ),
            actors=actors,
        )

    def _region_name(self, adcode: str) -> str:
        if not adcode:
            return ""
        return self.stations.regions.index().name_of(adcode) or ""

    async def edit(
        self,
        code: str,
        form: Mapping[str, Any],
        access: Access,
        at: datetime,
        actor_id: int | None = None,
    ) -> Station:
        """Set the form's fields (`EDIT_FIELDS`; amenities as a list of keys) of a station. The import's
        checks decide what is valid, the position decides the region (which must be one of the staff
        member's), and only changed fields are written and audited. Raises `StationEditRejected`."""
        station = await self.station(code, access)
        values: dict[str, Any] = {name: form.get(name, "") for name in EDIT_FIELDS}
        amenities = form.get("amenities") or []
        values["amenities"] = [amenities] if isinstance(amenities, str) else list(amenities)
        values.update(
            code=station.code,
            status=station.status.value,
            verified_at=station.verified_at,
            region=station.region,
        )
        labels = {name: Text(label) for name, label in FIELD_LABELS.items()}
        record, problems = check_station(values, labels)
        if record is None:
            raise StationEditRejected(problems)
        index = await asyncio.to_thread(self.stations.regions.index)
        check = await asyncio.to_thread(derive_regions, [record], [1], index, "row", True)
        if check.errors:
            raise StationEditRejected({"position": list(check.errors[0].problems)})
        record = check.records[0]
        if not access.can_manage(record.region):
            name = index.name_of(record.region) or record.region
            raise StationEditRejected(
                {
                    "position": [
                        Text(
                            N_(
                                "this position lies in {adcode} ({name}), outside the regions you manage; "
                                "ask the staff of that region to take the station over"
                            ),
                            adcode=record.region,
                            name=name,
                        )
                    ]
                }
            )
        changes = {
            name: getattr(record, name)
            for name in _CHANGEABLE
            if getattr(record, name) != getattr(station, name)
        }
        if not changes:
            return station
        return await self.admin.edit(station.id, changes, access, at, actor_id)

    # -- lifecycle --------------------------------------------------------------------------------------
    async def verify(self, code: str, access: Access, at: datetime, actor_id: int | None = None) -> Station:
        station = await self.station(code, access)
        return await self.admin.verify(station.id, access, at, actor_id)

    async def set_status(
        self,
        code: str,
        status: StationStatus,
        access: Access,
        at: datetime,
        reason: str = "",
        actor_id: int | None = None,
    ) -> Station:
        """Close temporarily, reopen, or close for good (which needs a reason: `InvalidEdit`)."""
        station = await self.station(code, access)
        return await self.admin.set_status(station.id, status, access, at, reason, actor_id)
