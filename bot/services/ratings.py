"""Ratings: one per rider per station, 1 to 5 stars with an optional comment, editable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.roles import Access
from domain.values import YizhanError
from storage.reports_repo import RatingRepository
from storage.stations_repo import StationRepository

MAX_COMMENT = 500


class InvalidRating(YizhanError):
    """`code` names the problem for the edges to word (`STARS`, `NO_STATION`, `TOO_LONG`, `NOT_RATED`);
    `reason` is English, for logs."""

    STARS = "stars"
    NO_STATION = "no_station"
    TOO_LONG = "too_long"
    NOT_RATED = "not_rated"

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RatingSummary:
    average: float | None
    count: int
    mine: int | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    stars: int
    text: str
    at: datetime


class RatingService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def rate(self, user_id: int, station_id: int, stars: int, at: datetime) -> RatingSummary:
        if not 1 <= stars <= 5:
            raise InvalidRating(InvalidRating.STARS, "a rating is 1 to 5 stars")
        async with self.sessions() as session, session.begin():
            if await StationRepository(session).get(station_id) is None:
                raise InvalidRating(InvalidRating.NO_STATION, "no such station")
            repo = RatingRepository(session)
            await repo.upsert(station_id, user_id, stars, None, at)
            average, count = await repo.summary(station_id)
        return RatingSummary(average, count, stars)

    async def comment(self, user_id: int, station_id: int, text: str, at: datetime) -> None:
        text = text.strip()
        if len(text) > MAX_COMMENT:
            raise InvalidRating(InvalidRating.TOO_LONG, f"a comment has at most {MAX_COMMENT} characters")
        async with self.sessions() as session, session.begin():
            if not await RatingRepository(session).set_comment(station_id, user_id, text, at):
                raise InvalidRating(InvalidRating.NOT_RATED, "rate the station first")

    async def summary(self, station_id: int, user_id: int | None = None) -> RatingSummary:
        async with self.sessions() as session:
            repo = RatingRepository(session)
            average, count = await repo.summary(station_id)
            mine = await repo.of_user(station_id, user_id) if user_id is not None else None
        return RatingSummary(average, count, mine.stars if mine else None)

    async def recent_comments(
        self, station_id: int, access: Access, region: str, limit: int = 5
    ) -> list[Comment]:
        access.require_staff_for(region)
        async with self.sessions() as session:
            rows = await RatingRepository(session).recent_comments(station_id, limit)
        return [Comment(r.stars, r.comment, r.updated_at) for r in rows]
