"""Reports from the H5 page: the same reports, cases and limits as the bot's, sent by a browser.

A browser has no account, so the first report it sends gets a device token: random, made here, kept by the
browser (the page stores it in localStorage) and shown again to follow its reports. Only a hash of the
token is stored, so the table cannot be used to read anyone's reports. Everything else is
`ReportService.submit`: staff see the case like any other; the per-reporter limits count per browser; and a
closure report weighs toward hiding the station only as `TrustPolicy.device_weight` allows (nothing by
default: a browser can claim any position, and a new one costs nothing). The position a browser sends is
used for its distance to the station, then forgotten.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.reports import InvalidReport, ReportKind, ReportService, check_text, parse_proposal
from bot.services.stations import StationService
from domain.values import GeoPoint, StationNotFound, StationStatus, YizhanError
from storage.web_reports_repo import DeviceReport, WebDeviceRepository

__all__ = ["DeviceReport", "InvalidDeviceToken", "WebReceipt", "WebReportService"]

#: A token is `secrets.token_urlsafe(32)`: 43 characters of the URL-safe alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
#: Reports a browser is shown, newest first.
MAX_LISTED = 50


class InvalidDeviceToken(YizhanError):
    """Not a token this service could have made."""


@dataclass(frozen=True, slots=True)
class WebReceipt:
    report: DeviceReport
    #: The browser's token when this report made it one (the browser keeps it), else None.
    new_token: str | None


def check_token(token: str) -> str:
    """`token` if it is one this service could have made; raises `InvalidDeviceToken`."""
    if not _TOKEN.fullmatch(token):
        raise InvalidDeviceToken("a device token is 32 to 64 characters of A-Z, a-z, 0-9, - and _")
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(check_token(token).encode("ascii")).hexdigest()


class WebReportService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], reports: ReportService, stations: StationService
    ) -> None:
        self.sessions = sessions
        self.reports = reports
        self.stations = stations

    async def submit(
        self,
        token: str | None,
        station_code: str,
        kind: str,
        at: datetime,
        *,
        detail: str = "",
        text: str = "",
        point: GeoPoint | None = None,
    ) -> WebReceipt:
        """Send a report from browser `token` (None, or one this service no longer knows: a new token).
        Raises what `ReportService.submit` raises; `StationNotFound` for an unknown or closed station."""
        hashed = token_hash(token) if token is not None else None
        try:
            report_kind = ReportKind(kind)
        except ValueError:
            raise InvalidReport(InvalidReport.KIND, f"unknown problem type {kind!r}") from None
        station = await self.stations.get(station_code)
        if station.status is StationStatus.CLOSED:
            raise StationNotFound(station_code)
        # Checked before a new browser is recorded, so that a refused first report records nothing.
        check_text(report_kind, text)
        parse_proposal(report_kind, detail, station)
        new_token: str | None = None
        async with self.sessions() as session, session.begin():
            devices = WebDeviceRepository(session)
            device = await devices.by_token_hash(hashed) if hashed is not None else None
            if device is None:
                new_token = secrets.token_urlsafe(32)
                device = await devices.add(token_hash(new_token), at)
            device_id = device.id
        evidence = await self.reports.locate(station.id, point, at) if point is not None else None
        await self.reports.submit(
            None,
            station.id,
            report_kind,
            at,
            detail=detail,
            text=text,
            evidence=evidence,
            device_id=device_id,
        )
        async with self.sessions() as session:
            latest = await WebDeviceRepository(session).reports(device_id, 1)
        return WebReceipt(latest[0], new_token)

    async def reports_of(self, token: str, limit: int = MAX_LISTED) -> list[DeviceReport]:
        """The browser's reports with their cases' status, newest first; none for an unknown token."""
        hashed = token_hash(token)
        async with self.sessions() as session:
            repo = WebDeviceRepository(session)
            device = await repo.by_token_hash(hashed)
            return await repo.reports(device.id, limit) if device is not None else []

    async def forget(self, token: str) -> int | None:
        """The browser's /forget: its reports are unlinked from it (staff keep the cases) and its token
        is deleted, so nothing ties them to this browser any more. Returns how many reports were unlinked,
        or None for an unknown token."""
        hashed = token_hash(token)
        async with self.sessions() as session, session.begin():
            repo = WebDeviceRepository(session)
            device = await repo.by_token_hash(hashed)
            return await repo.forget([device.id]) if device is not None else None

    async def report(self, token: str, report_id: int) -> DeviceReport | None:
        """One of the browser's reports; None when it is not one of this browser's."""
        hashed = token_hash(token)
        async with self.sessions() as session:
            repo = WebDeviceRepository(session)
            device = await repo.by_token_hash(hashed)
            if device is None:
                return None
            found = await repo.reports(device.id, 1, report_id=report_id)
        return found[0] if found else None
