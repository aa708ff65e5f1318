"""User use cases: recognise a user on every update, remember their language and amenity filter."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import AMENITY_KEYS, UnknownAmenity, User
from bot.i18n import LOCALES, locale_for
from bot.services.cache import TtlCache
from storage.users_repo import UserRepository


class UnknownLocale(ValueError):
    pass


def effective_locale(user: User | None, language_code: str | None = None) -> str:
    """An explicit choice wins; otherwise Telegram's language_code decides."""
    if user is not None and user.locale in LOCALES:
        return user.locale  # type: ignore[return-value]
    return locale_for(user.language_code if user is not None else language_code)


def user_cache(ttl: float = 60.0, max_size: int = 100_000) -> TtlCache[int, User]:
    """Recently seen users, so that an ordinary update costs no database round trip; `UserService`
    refreshes it on every change, the expiry bounds how long another process's change goes unseen."""
    return TtlCache(ttl, max_size)


class UserService:
    """Works inside the caller's session (one per update). Choices (language, filter) are committed at
    once, so that the rider's next tap, possibly handled concurrently, already sees them."""

    def __init__(self, session: AsyncSession, cache: TtlCache[int, User] | None = None) -> None:
        self.repo = UserRepository(session)
        self.session = session
        self.cache = cache if cache is not None else TtlCache(ttl=0.0, max_size=0)

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
        user, _wrote = await self.repo.upsert(user_id, first_name, username, language_code)
        # End the transaction at once: the session then holds no connection (and on SQLite no write
        # lock) while the handler runs, and services open short sessions of their own.
        await self.session.commit()
        self.cache.put(user.id, user)
        return user

    async def choose_locale(self, user_id: int, locale: str) -> User:
        if locale not in LOCALES:
            raise UnknownLocale(locale)
        user = await self.repo.set_locale(user_id, locale)
        await self.session.commit()
        self.cache.put(user.id, user)
        return user

    async def toggle_amenity(self, user: User, key: str) -> User:
        if key not in AMENITY_KEYS:
            raise UnknownAmenity(key)
        chosen = set(user.amenity_filter)
        chosen ^= {key}
        user = await self.repo.set_amenity_filter(user.id, tuple(k for k in AMENITY_KEYS if k in chosen))
        await self.session.commit()
        self.cache.put(user.id, user)
        return user

    async def clear_filter(self, user: User) -> User:
        user = await self.repo.set_amenity_filter(user.id, ())
        await self.session.commit()
        self.cache.put(user.id, user)
        return user
