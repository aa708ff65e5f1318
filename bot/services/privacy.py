"""Privacy use cases: a rider's /forget, and the retention of report comments and photos and of rating
comments.

Positions never reach this service: searches keep none, on-site checks keep a distance, subscriptions a
~5 km cell. What is left to forget is the person (their rows, unlinked reports and ratings) and what they
wrote or photographed in reports and wrote about stations they rated, which is kept `retention` long
(REPORT_RETENTION_DAYS). The hourly retention job also runs the purges other services hand it
(`also_purge`): the search counters' days past ANALYTICS_RETENTION_DAYS and the console's audit events
past CONSOLE_EVENTS_RETENTION_DAYS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.privacy_repo import Forgotten, PrivacyRepository

log = logging.getLogger(__name__)

#: How often the retention job looks for report contents past their time.
RETENTION_POLL_S = 3600.0


class PrivacyService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], retention: timedelta) -> None:
        self.sessions = sessions
        self.retention = retention
        self._purges: list[tuple[str, Callable[[datetime], Awaitable[int]]]] = []

    def also_purge(
        self, purge: Callable[[datetime], Awaitable[int]], what: str = "search counter rows"
    ) -> None:
        """Have the retention job also call `purge(now)` each round (it returns how many `what` went)."""
        self._purges.append((what, purge))

    async def forget(self, user_id: int, at: datetime) -> Forgotten:
        """Delete the person's own rows and unlink their reports and ratings, in one transaction."""
        async with self.sessions() as session, session.begin():
            return await PrivacyRepository(session).forget(user_id, at)

    async def purge_expired(self, at: datetime) -> int:
        """Empty the comments and photos of reports, and the comments of ratings, older than the retention
        period, and forget the H5 browsers that sent no report within it; returns how many reports and
        ratings were emptied."""
        async with self.sessions() as session, session.begin():
            repo = PrivacyRepository(session)
            before = at - self.retention
            emptied = await repo.purge_report_contents(before) + await repo.purge_rating_comments(before)
            forgotten = await repo.purge_idle_devices(before)
        if forgotten:
            log.info("retention: forgot %d H5 browsers without a report since %s", forgotten, before.date())
        return emptied

    async def retention_round(self, clock: Callable[[], datetime]) -> None:
        """One round of the retention job: report contents, then every purge handed over; a failed purge
        is logged and does not keep the others from running."""
        try:
            purged = await self.purge_expired(clock())
            if purged:
                log.info("retention: emptied what riders wrote in %d old reports and ratings", purged)
        except Exception:
            log.exception("retention round failed")
        for what, purge in self._purges:
            try:
                deleted = await purge(clock())
                if deleted:
                    log.info("retention: deleted %d %s past their time", deleted, what)
            except Exception:
                log.exception("retention round failed for %s", what)

    async def run_retention(self, clock: Callable[[], datetime], stop: asyncio.Event) -> None:
        """Purge now, then every hour until `stop`; a failed round is logged and tried next time."""
        while not stop.is_set():
            await self.retention_round(clock)
            try:
                await asyncio.wait_for(stop.wait(), RETENTION_POLL_S)
            except TimeoutError:
                pass
