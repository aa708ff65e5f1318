"""User use cases: recognise a user on every update, remember their language and amenity filter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import LOCALES, locale_for
from bot.services.cache import TtlCache
from domain.values import AMENITY_KEYS, UnknownAmenity, User
from storage.changes import USERS_STREAM, RedisChangeFeed, redis_down
from storage.users_repo import UserRepository

log = logging.getLogger(__name__)


class UnknownLocale(ValueError):
    pass


def effective_locale(user: User | None, language_code: str | None = None) -> str:
    """An explicit choice wins; otherwise Telegram's language_code decides."""
    if user is not None and user.locale in LOCALES:
        return user.locale  # type: ignore[return-value]
    return locale_for(user.language_code if user is not None else language_code)


class UserCache:
    """Users this process knows, so that an ordinary update costs no database round trip.

    Writes made here update it at once. With a change feed (`REDIS_URL`: several processes serve the bot)
    every write is announced and each process drops its copy of that user, so entries can live long; on a
    gap in the feed a follower drops them all. `ttl` bounds how stale an entry can get should a notice
    still be lost."""

    def __init__(self, ttl: float = 3600.0, max_size: int = 100_000, feed: Any = None) -> None:
        self.entries: TtlCache[int, User] = TtlCache(ttl, max_size)
        self.feed = feed

    def get(self, user_id: int) -> User | None:
        return self.entries.get(user_id)

    def put(self, user: User) -> None:
        """A user as read from the database."""
        self.entries.put(user.id, user)

    async def changed(self, user: User) -> None:
        """A user this process has just written: kept here, announced to the others."""
        self.entries.put(user.id, user)
        if self.feed is None:
            return
        try:
            await self.feed.publish([user.id])
        except redis_down() as exc:
            # Followers resynchronise (drop everything) once Redis is back, which covers this notice.
            log.warning("user change feed: Redis unreachable (%r); user %s not announced", exc, user.id)

    async def removed(self, user_id: int) -> None:
        """A user this process has just deleted (/forget): dropped here, announced to the others."""
        self.entries.discard(user_id)
        if self.feed is None:
            return
        try:
            await self.feed.publish([user_id])
        except redis_down() as exc:
            log.warning("user change feed: Redis unreachable (%r); user %s not announced", exc, user_id)

    async def forget(self, user_ids: Sequence[int]) -> None:
        for user_id in user_ids:
            self.entries.discard(user_id)

    async def forget_all(self) -> None:
        self.entries.clear()

    async def follow(self, stop: asyncio.Event) -> None:
        """Drop the users other processes change, until `stop` (a no-op without a feed)."""
        if self.feed is not None:
            await self.feed.follow(self.forget, self.forget_all, stop)

    def __len__(self) -> int:
        return len(self.entries)


def user_cache(redis: Any = None) -> UserCache:
    return UserCache(feed=RedisChangeFeed(redis, USERS_STREAM) if redis is not None else None)


class UserService:
    """Works inside the caller's session (one per update). Choices (language, filter) are committed at
    once, so that the rider's next tap, possibly handled concurrently, already sees them."""

    def __init__(self, session: AsyncSession, cache: UserCache | None = None) -> None:
        self.repo = UserRepository(session)
        self.session = session
        self.cache = cache if cache is not None else UserCache(ttl=0.0, max_size=0)

    async def get(self, user_id: int) -> User | None:
        """A known user as stored, or None."""
        return await self.repo.get(user_id)

    async def locale_of(self, user_id: int) -> str:
        """The locale to write to a user in (the default for someone the bot does not know)."""
        return effective_locale(await self.repo.get(user_id))

    async def seen(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> User:
        first_name = first_name[:200]
        username = username or None
        cached = self.cache.get(user_id)
        if cached is not None and (cached.first_name, cached.username, cached.language_code) == (
            first_name,
            username,
            language_code,
        ):
            return cached
        user, wrote = await self.repo.upsert(user_id, first_name, username, language_code)
        # End the transaction at once: the session then holds no connection (and on SQLite no write
        # lock) while the handler runs, and services open short sessions of their own.
        await self.session.commit()
        if wrote:
            await self.cache.changed(user)
        else:
            self.cache.put(user)
        return user

    async def choose_locale(self, user_id: int, locale: str) -> User:
        if locale not in LOCALES:
            raise UnknownLocale(locale)
        user = await self.repo.set_locale(user_id, locale)
        await self.session.commit()
        await self.cache.changed(user)
        return user

    async def toggle_amenity(self, user: User, key: str) -> User:
        if key not in AMENITY_KEYS:
            raise UnknownAmenity(key)
        chosen = set(user.amenity_filter)
        chosen ^= {key}
        user = await self.repo.set_amenity_filter(user.id, tuple(k for k in AMENITY_KEYS if k in chosen))
        await self.session.commit()
        await self.cache.changed(user)
        return user

    async def forgotten(self, user_id: int) -> None:
        """The user's rows are gone (PrivacyService.forget): no process may answer from a cached copy."""
        await self.cache.removed(user_id)

    async def clear_filter(self, user: User) -> User:
        user = await self.repo.set_amenity_filter(user.id, ())
        await self.session.commit()
        await self.cache.changed(user)
        return user
