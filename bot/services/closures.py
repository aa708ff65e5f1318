"""Closure reports riders see: "2 riders reported it closed at 14:05" on a station still listed.

A station with an open closure case whose reports weigh something (on site, by trusted reporters) stays
listed below the threshold that hides it, with that warning. Results and cards show it for the hits on
screen only, so the board is held in memory like the station cache: loaded at start-up, patched by the
reports this process takes and decides, and by the change feed for those of other processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.clock import DEFAULT_TZ
from storage.reports_repo import ClosureTally, ReportRepository

#: How long a closure report stays worth showing: the window of the safety net.
NOTE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ClosureNote:
    """How many people reported a station closed, and when the latest did (in the station's timezone)."""

    count: int
    last_at: datetime

    def as_json(self) -> dict[str, object]:
        return {"count": self.count, "last_at": self.last_at.isoformat()}


class ClosureBoard:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        default_tz: str = DEFAULT_TZ,
        window: timedelta = NOTE_WINDOW,
    ) -> None:
        self.sessions = sessions
        self.default_tz = default_tz
        self.window = window
        self.notes: dict[int, ClosureNote] = {}

    def get(self, station_id: int, at: datetime) -> ClosureNote | None:
        """The note of a station at `at`; None when there is none or its latest report is too old."""
        note = self.notes.get(station_id)
        if note is None or at - note.last_at > self.window:
            return None
        return note

    def _note(self, tally: ClosureTally) -> ClosureNote:
        tz = ZoneInfo(tally.timezone or self.default_tz)
        return ClosureNote(tally.reporters, tally.last_at.astimezone(tz))

    async def load(self) -> int:
        """Every station's note afresh (start-up, and after missed change notifications)."""
        async with self.sessions() as session:
            tallies = await ReportRepository(session).closure_tallies()
        self.notes = {tally.station_id: self._note(tally) for tally in tallies}
        return len(self.notes)

    async def refresh(self, station_ids: Sequence[int]) -> None:
        """The notes of these stations afresh (after a report or a decision, here or elsewhere)."""
        if not station_ids:
            return
        async with self.sessions() as session:
            tallies = await ReportRepository(session).closure_tallies(station_ids)
        for station_id in station_ids:
            self.notes.pop(station_id, None)
        for tally in tallies:
            self.notes[tally.station_id] = self._note(tally)

    def __len__(self) -> int:
        return len(self.notes)
