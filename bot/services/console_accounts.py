"""Staff console accounts: creation, passwords (Argon2id), logins with lockout, one-time setup links, and
the console's audit.

An account has no role of its own. Its **actor id** is its linked Telegram id, else minus its own id
(negative, so never a Telegram user's), and its roles are the `roles` rows of that id: the console asks
`RoleService.access(actor_id)` exactly as the bot does, so one person has one role and one audit identity
in both places, and station audit rows written from the console carry the actor id.

Guessing passwords is slowed twice, each from the database so every replica agrees: per account (consecutive
failures; after each the next attempt waits 0, 1, 2, 4… seconds, and after `max_failures` the account is
locked for `lock`) and per client address (failures since its last success within the lock window, the
same delays, locked at `address_max_failures`, which is higher because an office shares one address).
A refused attempt never reaches the password hash, so a flood costs a database read, not an Argon2 run;
Argon2 runs in a thread, at most `HASH_CONCURRENCY` at a time (each takes 64 MiB).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.roles import Access, InvalidGrant, Role, RoleService, validate_grant
from domain.values import YizhanError
from storage.console_repo import (
    LOGIN_FAILED,
    LOGIN_OK,
    ConsoleAccountRepository,
    ConsoleEventRepository,
)
from storage.models import ConsoleAccountRow
from storage.roles_repo import RoleRepository

log = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}")
MIN_PASSWORD = 10
#: Longer input is refused before hashing: Argon2's cost grows with it.
MAX_PASSWORD = 1024
#: Argon2 runs at once per process (each run takes `PasswordHasher().memory_cost`, 64 MiB by default).
HASH_CONCURRENCY = 2
SETUP_LINK_VALID = timedelta(hours=24)
#: Longest wait between two attempts before the lock itself takes over.
MAX_DELAY_S = 60.0
CONSOLE_ROLES = (Role.STAFF.value, Role.ADMIN.value)


class AccountError(YizhanError):
    """A console account operation that cannot be done; `code` names it for the edges to word."""

    USERNAME = "username"
    EXISTS = "exists"
    UNKNOWN = "unknown"
    PASSWORD_SHORT = "password_short"
    PASSWORD_LONG = "password_long"
    ROLE = "role"
    TELEGRAM_ID = "telegram_id"
    TELEGRAM_TAKEN = "telegram_taken"
    SETUP_LINK = "setup_link"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LoginStatus(enum.StrEnum):
    OK = "ok"
    #: Wrong username or password, or a disabled account (the answer does not tell which).
    WRONG = "wrong"
    #: Too soon after a failure: wait `retry_after_s`.
    WAIT = "wait"
    #: Too many failures for the account or the address: locked for `retry_after_s`.
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int = 5
    lock: timedelta = timedelta(minutes=15)
    address_max_failures: int = 20

    def delay_after(self, failures: int) -> float:
        """Seconds the next attempt waits after `failures` consecutive failures: 0, 1, 2, 4, 8…"""
        if failures <= 1:
            return 0.0
        return min(MAX_DELAY_S, float(2 ** (failures - 2)))


@dataclass(frozen=True, slots=True)
class ConsoleAccount:
    id: int
    username: str
    telegram_id: int | None
    disabled: bool
    created_at: datetime
    password_changed_at: datetime | None
    sessions_valid_after: datetime | None
    failed_count: int
    locked_until: datetime | None
    locale: str | None
    has_password: bool

    @property
    def actor_id(self) -> int:
        return actor_id(self.id, self.telegram_id)

    @classmethod
    def of(cls, row: ConsoleAccountRow) -> ConsoleAccount:
        return cls(
            id=row.id,
            username=row.username,
            telegram_id=row.telegram_id,
            disabled=bool(row.disabled),
            created_at=row.created_at,
            password_changed_at=row.password_changed_at,
            sessions_valid_after=row.sessions_valid_after,
            failed_count=row.failed_count or 0,
            locked_until=row.locked_until,
            locale=row.locale,
            has_password=bool(row.password_hash),
        )


def actor_id(account_id: int, telegram_id: int | None) -> int:
    """The id an account acts as: its Telegram id when linked, else minus its own (never a Telegram id)."""
    return telegram_id if telegram_id is not None else -account_id


@dataclass(frozen=True, slots=True)
class LoginResult:
    status: LoginStatus
    account: ConsoleAccount | None = None
    retry_after_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is LoginStatus.OK


@dataclass(frozen=True, slots=True)
class ConsoleEvent:
    id: int
    at: datetime
    account_id: int | None
    username: str
    address: str
    action: str
    target: str
    detail: dict[str, Any]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleAccountService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        roles: RoleService,
        policy: LoginPolicy | None = None,
        hasher: PasswordHasher | None = None,
        events_retention: timedelta | None = None,
    ) -> None:
        self.sessions = sessions
        #: How long audit events are kept (CONSOLE_EVENTS_RETENTION_DAYS); None keeps them for ever.
        self.events_retention = events_retention
        self.roles = roles
        self.policy = policy or LoginPolicy()
        self.hasher = hasher or PasswordHasher()
        self._hashing = asyncio.Semaphore(HASH_CONCURRENCY)
        self._dummy_hash: str | None = None

    # -- hashing ------------------------------------------------------------------------------------------

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        async with self._hashing:
            try:
                return await asyncio.to_thread(self.hasher.verify, stored, password)
            except VerifyMismatchError:
                return False
            except (VerificationError, InvalidHashError):
                log.warning("console: a stored password hash cannot be verified")
                return False

    async def _dummy(self) -> str:
        """A hash to verify against when there is no account, so that its absence takes as long."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    @staticmethod
    def check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(
                AccountError.PASSWORD_SHORT, f"the password needs at least {MIN_PASSWORD} characters"
            )
        if len(password) > MAX_PASSWORD:
            raise AccountError(
                AccountError.PASSWORD_LONG, f"the password may have at most {MAX_PASSWORD} characters"
            )

    # -- accounts -----------------------------------------------------------------------------------------

    @staticmethod
    def validate_new(username: str, role: str, region: str) -> tuple[Role, str]:
        """The checks of a new account that need no database (the command line runs them before asking
        for a password)."""
        if not USERNAME.fullmatch(username):
            raise AccountError(
                AccountError.USERNAME,
                "a username has 2 to 64 characters: letters, digits and _ . @ -, "
                "starting with a letter or digit",
            )
        if role not in CONSOLE_ROLES:
            raise AccountError(AccountError.ROLE, f"console accounts are staff or admin, not {role!r}")
        try:
            parsed, region = validate_grant(role, region or "")
        except InvalidGrant as exc:
            raise AccountError(AccountError.ROLE, str(exc)) from None
        return parsed, region

    async def create(
        self,
        username: str,
        role: str,
        region: str,
        at: datetime,
        *,
        password: str | None = None,
        telegram_id: int | None = None,
        setup_link: bool = False,
        by: str = "cli",
    ) -> tuple[ConsoleAccount, str | None]:
        """A new account with its role; with `setup_link` (and no password) also the one-time token of its
        setup link, valid for a day (only its hash is stored)."""
        parsed, region = self.validate_new(username, role, region)
        if telegram_id is not None and telegram_id <= 0:
            raise AccountError(AccountError.TELEGRAM_ID, "a Telegram id is a positive number")
        token: str | None = None
        password_hash = ""
        if password is not None:
            self.check_password(password)
            password_hash = await self._hash(password)
        elif setup_link:
            token = secrets.token_urlsafe(32)
        else:
            raise AccountError(AccountError.PASSWORD_SHORT, "a password or a setup link is needed")
        async with self.sessions() as session, session.begin():
            repo = ConsoleAccountRepository(session)
            if await repo.by_username(username) is not None:
                raise AccountError(AccountError.EXISTS, f"there is already an account {username!r}")
            if telegram_id is not None and await repo.by_telegram_id(telegram_id) is not None:
                raise AccountError(
                    AccountError.TELEGRAM_TAKEN, f"Telegram id {telegram_id} is linked to another account"
                )
            row = await repo.add(
                username,
                password_hash,
                at,
                telegram_id=telegram_id,
                setup_token_hash=_token_hash(token) if token else None,
                setup_expires_at=at + SETUP_LINK_VALID if token else None,
            )
            account = ConsoleAccount.of(row)
            await RoleRepository(session).grant(account.actor_id, parsed.value, region, None)
            await ConsoleEventRepository(session).add(
                at,
                "account_created",
                account_id=account.id,
                username=username,
                target=username,
                detail={"role": parsed.value, "region": region, "by": by, "setup_link": bool(token)},
            )
        return account, token

    async def get(self, account_id: int) -> ConsoleAccount | None:
        async with self.sessions() as session:
            row = await ConsoleAccountRepository(session).get(account_id)
        return ConsoleAccount.of(row) if row is not None else None

    async def by_username(self, username: str) -> ConsoleAccount | None:
        async with self.sessions() as session:
            row = await ConsoleAccountRepository(session).by_username(username)
        return ConsoleAccount.of(row) if row is not None else None

    async def _require(self, session: AsyncSession, username: str) -> ConsoleAccountRow:
        row = await ConsoleAccountRepository(session).by_username(username, for_update=True)
        if row is None:
            raise AccountError(AccountError.UNKNOWN, f"no account {username!r}")
        return row

    async def set_password(self, username: str, password: str, at: datetime, by: str = "cli") -> None:
        """A new password: the account's sessions end, its lock and any setup link too."""
        self.check_password(password)
        password_hash = await self._hash(password)
        async with self.sessions() as session, session.begin():
            row = await self._require(session, username)
            row.password_hash = password_hash
            row.password_changed_at = at
            row.sessions_valid_after = at
            row.failed_count = 0
            row.locked_until = None
            row.setup_token_hash = None
            row.setup_expires_at = None
            await ConsoleEventRepository(session).add(
                at,
                "password_set",
                account_id=row.id,
                username=row.username,
                target=username,
                detail={"by": by},
            )

    async def set_disabled(self, username: str, disabled: bool, at: datetime, by: str = "cli") -> None:
        async with self.sessions() as session, session.begin():
            row = await self._require(session, username)
            row.disabled = disabled
            if disabled:
                row.sessions_valid_after = at
            else:
                row.failed_count = 0
                row.locked_until = None
            await ConsoleEventRepository(session).add(
                at,
                "account_disabled" if disabled else "account_enabled",
                account_id=row.id,
                username=row.username,
                target=username,
                detail={"by": by},
            )

    async def link(self, username: str, telegram_id: int, at: datetime, by: str = "cli") -> ConsoleAccount:
        """Link the account to a Telegram id: its roles move to that id (joining any the person has in the
        bot), and it acts as that id from now on."""
        if telegram_id <= 0:
            raise AccountError(AccountError.TELEGRAM_ID, "a Telegram id is a positive number")
        async with self.sessions() as session, session.begin():
            repo = ConsoleAccountRepository(session)
            row = await self._require(session, username)
            other = await repo.by_telegram_id(telegram_id)
            if other is not None and other.id != row.id:
                raise AccountError(
                    AccountError.TELEGRAM_TAKEN, f"Telegram id {telegram_id} is linked to another account"
                )
            old_actor = actor_id(row.id, row.telegram_id)
            roles = RoleRepository(session)
            for role, region in await roles.grants_of(old_actor):
                await roles.grant(telegram_id, role, region, None)
                if old_actor != telegram_id:
                    await roles.revoke(old_actor, role, region)
            row.telegram_id = telegram_id
            # The sessions carry the old actor id's access no longer; they log in again.
            row.sessions_valid_after = at
            await ConsoleEventRepository(session).add(
                at,
                "account_linked",
                account_id=row.id,
                username=row.username,
                target=username,
                detail={"telegram_id": telegram_id, "previous_actor_id": old_actor, "by": by},
            )
            account = ConsoleAccount.of(row)
        return account

    async def accounts(self) -> list[tuple[ConsoleAccount, Access]]:
        async with self.sessions() as session:
            rows = await ConsoleAccountRepository(session).all()
        accounts = [ConsoleAccount.of(row) for row in rows]
        return [(account, await self.roles.access(account.actor_id)) for account in accounts]

    async def set_locale(self, account_id: int, locale: str | None) -> None:
        async with self.sessions() as session, session.begin():
            row = await ConsoleAccountRepository(session).get(account_id)
            if row is not None:
                row.locale = locale

    async def logout_everywhere(self, account_id: int, at: datetime, address: str = "") -> None:
        """Every session of the account that logged in up to `at` is over."""
        async with self.sessions() as session, session.begin():
            row = await ConsoleAccountRepository(session).get(account_id)
            if row is None:
                return
            row.sessions_valid_after = at
            await ConsoleEventRepository(session).add(
                at, "logout_everywhere", account_id=row.id, username=row.username, address=address
            )

    # -- setup links --------------------------------------------------------------------------------------

    async def new_setup_link(self, username: str, at: datetime, by: str = "cli") -> str:
        """A new one-time setup token for an existing account (the previous one stops working)."""
        token = secrets.token_urlsafe(32)
        async with self.sessions() as session, session.begin():
            row = await self._require(session, username)
            row.setup_token_hash = _token_hash(token)
            row.setup_expires_at = at + SETUP_LINK_VALID
            await ConsoleEventRepository(session).add(
                at, "setup_link", account_id=row.id, username=row.username, target=username, detail={"by": by}
            )
        return token

    async def setup_account(self, token: str) -> ConsoleAccount | None:
        """The account a setup token is for, when it is valid (not used, not expired)."""
        if not token or len(token) > 200:
            return None
        async with self.sessions() as session:
            row = await ConsoleAccountRepository(session).by_setup_token(_token_hash(token))
            return ConsoleAccount.of(row) if row is not None else None

    async def use_setup_link(
        self, token: str, password: str, at: datetime, address: str = ""
    ) -> ConsoleAccount:
        """Set the password of the token's account; the token is spent."""
        self.check_password(password)
        if not token or len(token) > 200:
            raise AccountError(AccountError.SETUP_LINK, "the setup link is not valid")
        password_hash = await self._hash(password)
        async with self.sessions() as session, session.begin():
            row = await ConsoleAccountRepository(session).by_setup_token(_token_hash(token))
            if row is None or row.setup_expires_at is None or row.setup_expires_at <= at or row.disabled:
                raise AccountError(AccountError.SETUP_LINK, "the setup link is not valid or has expired")
            row.password_hash = password_hash
            row.password_changed_at = at
            row.sessions_valid_after = at
            row.setup_token_hash = None
            row.setup_expires_at = None
            row.failed_count = 0
            row.locked_until = None
            await ConsoleEventRepository(session).add(
                at,
                "password_set",
                account_id=row.id,
                username=row.username,
                address=address,
                detail={"by": "setup_link"},
            )
            account = ConsoleAccount.of(row)
        return account

    # -- logins -------------------------------------------------------------------------------------------

    async def login(self, username: str, password: str, address: str, at: datetime) -> LoginResult:
        """Check a login attempt, within the limits per account and per address; every outcome audited."""
        policy = self.policy
        username = username.strip()[:64]
        async with self.sessions() as session:
            count, last = await ConsoleEventRepository(session).failures_from(address, at - policy.lock)
        if count >= policy.address_max_failures and last is not None:
            wait = (last + policy.lock - at).total_seconds()
            if wait > 0:
                await self._refused(at, username, address, "address_locked", wait)
                return LoginResult(LoginStatus.LOCKED, retry_after_s=wait)
        if last is not None:
            wait = (last + timedelta(seconds=policy.delay_after(count)) - at).total_seconds()
            if wait > 0:
                await self._refused(at, username, address, "address_wait", wait)
                return LoginResult(LoginStatus.WAIT, retry_after_s=wait)

        async with self.sessions() as session, session.begin():
            repo = ConsoleAccountRepository(session)
            row = await repo.by_username(username, for_update=True) if USERNAME.fullmatch(username) else None
            if row is not None and row.locked_until is not None and row.locked_until > at:
                wait = (row.locked_until - at).total_seconds()
                locked = row.failed_count >= policy.max_failures
                await ConsoleEventRepository(session).add(
                    at,
                    "login_refused",
                    account_id=row.id,
                    username=username,
                    address=address,
                    detail={
                        "reason": "account_locked" if locked else "account_wait",
                        "wait_s": round(wait, 1),
                    },
                )
                return LoginResult(LoginStatus.LOCKED if locked else LoginStatus.WAIT, retry_after_s=wait)
            stored = row.password_hash if row is not None and row.password_hash else await self._dummy()
            valid = len(password) <= MAX_PASSWORD and await self._verify(stored, password)
            events = ConsoleEventRepository(session)
            if row is not None and valid and row.password_hash and not row.disabled:
                row.failed_count = 0
                row.locked_until = None
                if self.hasher.check_needs_rehash(row.password_hash):
                    row.password_hash = await self._hash(password)
                await events.add(at, LOGIN_OK, account_id=row.id, username=username, address=address)
                return LoginResult(LoginStatus.OK, ConsoleAccount.of(row))
            reason = "unknown_user" if row is None else "disabled" if row.disabled else "wrong_password"
            if row is not None and not (valid and row.disabled):
                failures = await repo.record_failure(row.id, at)
                lock = (
                    policy.lock
                    if failures >= policy.max_failures
                    else timedelta(seconds=policy.delay_after(failures))
                )
                await repo.set_locked_until(row.id, at + lock if lock else None)
            await events.add(
                at,
                LOGIN_FAILED,
                account_id=row.id if row is not None else None,
                username=username,
                address=address,
                detail={"reason": reason},
            )
        log.info("console login failed for %r from %s: %s", username, address, reason)
        return LoginResult(LoginStatus.WRONG)

    async def _refused(self, at: datetime, username: str, address: str, reason: str, wait: float) -> None:
        async with self.sessions() as session, session.begin():
            await ConsoleEventRepository(session).add(
                at,
                "login_refused",
                username=username,
                address=address,
                detail={"reason": reason, "wait_s": round(wait, 1)},
            )

    # -- audit --------------------------------------------------------------------------------------------

    async def record(
        self,
        at: datetime,
        action: str,
        *,
        account_id: int | None,
        username: str = "",
        address: str = "",
        target: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One privileged console action (pages call this for what they change)."""
        async with self.sessions() as session, session.begin():
            await ConsoleEventRepository(session).add(
                at,
                action,
                account_id=account_id,
                username=username,
                address=address,
                target=target,
                detail=detail,
            )

    async def events(
        self, access: Access, limit: int = 100, before_id: int | None = None, account_id: int | None = None
    ) -> list[ConsoleEvent]:
        """The latest console events (admins only), newest first."""
        access.require_admin()
        async with self.sessions() as session:
            rows = await ConsoleEventRepository(session).recent(
                max(1, min(limit, 500)), before_id, account_id
            )
        return [
            ConsoleEvent(
                r.id, r.at, r.account_id, r.username, r.address, r.action, r.target, dict(r.detail or {})
            )
            for r in rows
        ]

    async def purge_expired_events(self, at: datetime) -> int:
        """Delete the audit events older than the retention period (none when it is unset); returns how
        many went. The login limits read only the last `policy.lock` of events, far inside any period."""
        if self.events_retention is None:
            return 0
        async with self.sessions() as session, session.begin():
            return await ConsoleEventRepository(session).purge_before(at - self.events_retention)
