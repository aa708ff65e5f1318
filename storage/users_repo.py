"""User repository: who talks to the bot, their language choice and their amenity filter."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.clock import utc_now
from domain.values import User
from storage.models import UserRow


def row_to_user(row: UserRow) -> User:
    return User(
        id=row.id,
        first_name=row.first_name,
        username=row.username,
        language_code=row.language_code,
        locale=row.locale,
        amenity_filter=tuple(row.amenity_filter or ()),
    )


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> User | None:
        row = await self.session.get(UserRow, user_id)
        return row_to_user(row) if row else None

    async def get_many(self, user_ids: list[int]) -> dict[int, User]:
        if not user_ids:
            return {}
        rows = await self.session.scalars(select(UserRow).where(UserRow.id.in_(user_ids)))
        return {row.id: row_to_user(row) for row in rows}

    async def upsert(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> tuple[User, bool]:
        """Create the user or refresh what Telegram tells about them; writes only when something changed
        (the flag says whether it wrote)."""
        row = await self.session.get(UserRow, user_id)
        if row is None:
            # Several first updates of one user can arrive at once: insert-or-ignore, then read.
            dialect = self.session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            now = utc_now()
            await self.session.execute(
                insert(UserRow)
                .values(
                    id=user_id,
                    first_name=first_name,
                    username=username,
                    language_code=language_code,
                    amenity_filter=[],
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            row = await self.session.get(UserRow, user_id, populate_existing=True)
            assert row is not None
            return row_to_user(row), True
        elif (row.first_name, row.username, row.language_code) != (first_name, username, language_code):
            row.first_name, row.username, row.language_code = first_name, username, language_code
            row.updated_at = utc_now()
            await self.session.flush()
            return row_to_user(row), True
        return row_to_user(row), False

    async def set_locale(self, user_id: int, locale: str | None) -> User:
        row = await self._require(user_id)
        row.locale = locale
        row.updated_at = utc_now()
        await self.session.flush()
        return row_to_user(row)

    async def set_amenity_filter(self, user_id: int, amenities: tuple[str, ...]) -> User:
        row = await self._require(user_id)
        row.amenity_filter = list(amenities)
        row.updated_at = utc_now()
        await self.session.flush()
        return row_to_user(row)

    async def _require(self, user_id: int) -> UserRow:
        row = await self.session.get(UserRow, user_id)
        if row is None:
            raise LookupError(user_id)
        return row
