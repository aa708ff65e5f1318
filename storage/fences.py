"""Write fences: why the API's incremental sync never skips a station.

A client syncs with `since=` the `server_time` of its previous sync and gets the stations whose `updated_at`
is later. A write stamps `updated_at` while it runs but becomes visible only when it commits, and an import
of the national network holds its transaction for many seconds. A sync read in between could not see those
rows yet, yet would hand out a `server_time` later than their stamp: the client's next sync would skip them
for good.

So every station write runs in a session from `station_write` (the station repository refuses any other),
inside a fence:

1. a fence row holding the write's start time is committed, in a transaction of its own;
2. the write stamps its rows with the clock read after that, and commits them;
3. the fence is deleted.

A sync reads the clock, then the oldest live fence, then the rows, and answers with the earlier of the clock
and the fence's start. A write whose fence it saw stamps its rows later than that start; a write whose fence
it did not see started after the sync read the clock. Either way the rows a sync could not see are later
than its `server_time`, and the next sync returns them. Between the two, changes may be sent twice, which
costs a client nothing: it applies them by code.

A fence left behind by a process that died holds `server_time` back until it expires (`FENCE_TTL`); syncs
meanwhile re-send the changes since its start. A write that would take longer than that needs a longer ttl.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.clock import utc_now
from storage.models import WriteFenceRow

log = logging.getLogger(__name__)

#: How long a fence holds syncs back at most (one left by a process that died, say).
FENCE_TTL = timedelta(hours=1)
#: Key in `AsyncSession.info` marking a session opened by `station_write` with a fence held.
FENCED = "yizhan.write_fence"
#: Rows stamped after a fence started are stamped later than this before its start; a sync answers no later.
_MARGIN = timedelta(milliseconds=1)


@asynccontextmanager
async def write_fence(
    sessions: async_sessionmaker[AsyncSession], purpose: str, ttl: timedelta = FENCE_TTL
) -> AsyncIterator[None]:
    """Hold a fence around a station write: open the write's transaction inside, stamp rows with the clock
    read inside (`utc_now()` at the write), and commit before leaving."""
    started = utc_now()
    holder = f"{socket.gethostname()}:{os.getpid()} {purpose}"[:100]
    async with sessions() as session, session.begin():
        # Fences of processes that died are of no use past their expiry.
        await session.execute(delete(WriteFenceRow).where(WriteFenceRow.expires_at <= started))
        fence_id = (
            await session.execute(
                insert(WriteFenceRow)
                .values(started_at=started, expires_at=started + ttl, holder=holder)
                .returning(WriteFenceRow.id)
            )
        ).scalar_one()
    try:
        yield
    finally:
        try:
            async with sessions() as session, session.begin():
                await session.execute(delete(WriteFenceRow).where(WriteFenceRow.id == fence_id))
        except Exception:
            # Syncs re-send changes since `started` until the fence expires; nothing is lost.
            log.warning(
                "could not remove write fence %s (%s); it expires at %s",
                fence_id,
                holder,
                started + ttl,
                exc_info=True,
            )


@asynccontextmanager
async def station_write(
    sessions: async_sessionmaker[AsyncSession], purpose: str, *, fenced: bool = True
) -> AsyncIterator[AsyncSession]:
    """A session in a transaction for a write that may change stations, inside a write fence; committed on
    leaving. The station repository refuses to write stations in any other session. `fenced=False` (a dry
    run, a report that cannot change its station) saves the fence's two small transactions."""
    fence = write_fence(sessions, purpose) if fenced else nullcontext()
    async with fence, sessions() as session, session.begin():
        session.info[FENCED] = fenced
        yield session


def require_fence(session: AsyncSession) -> None:
    """Raise unless `session` came from `station_write` with a fence: a station write outside one could be
    skipped by a sync for good (see the module docstring)."""
    if not session.info.get(FENCED):
        raise RuntimeError("station writes run in a session from storage.fences.station_write")


async def sync_horizon(session: AsyncSession, now: datetime) -> datetime:
    """The latest `server_time` a sync that read the clock at `now` may hand out: `now`, or just before the
    start of the oldest write still in progress. Read it before the rows, in the session that reads them."""
    oldest = (
        await session.execute(
            select(func.min(WriteFenceRow.started_at)).where(WriteFenceRow.expires_at > now)
        )
    ).scalar_one()
    if oldest is None:
        return now
    return min(now, oldest - _MARGIN)
