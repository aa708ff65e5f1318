"""The Telegram side of the composition root: Bot, Dispatcher, start-up calls, polling and webhook runners.

Long-lived objects reach handlers as Dispatcher keyword arguments (`nearby`, `stations`, `subscriptions`,
`announcements`, `clock`, `default_tz`); per-update ones (`session`, `users`, `user`, locale) come from the
middlewares.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import BotCommand, BotCommandScopeDefault, ErrorEvent, Message
from aiogram.utils.i18n import I18n
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.app import Core
from bot.config import Settings
from bot.i18n import DEFAULT_LOCALE, DOMAIN, LOCALES_DIR
from bot.middlewares import (
    LocaleMiddleware,
    ThrottlingMiddleware,
    TokenBuckets,
    UpdateContextMiddleware,
    UpdateOnceMiddleware,
    UserSessionMiddleware,
)
from bot.notify import tell
from bot.observability import Metrics, log_context
from bot.services.nearby import NearbyService
from bot.services.reports import StaffDigest
from bot.services.users import UserService, effective_locale, user_cache
from bot.session import JsonAiohttpSession
from domain.clock import utc_now
from domain.demand import Channel
from domain.languages import LANGUAGES
from domain.values import User, YizhanError
from handlers import announcements, moderation, privacy, reports, search, start
from storage.memory_state import ExpiringMemoryStorage

log = logging.getLogger(__name__)


def build_bot(token: str, api_url: str | None = None) -> Bot:
    api = TelegramAPIServer.from_base(api_url) if api_url else None
    session = JsonAiohttpSession(api=api) if api is not None else JsonAiohttpSession()
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


def build_dispatcher(
    core: Core,
    *,
    storage: BaseStorage | None = None,
    clock: Callable[[], datetime] = utc_now,
    throttle_rate: float = 3.0,
    throttle_burst: float = 8.0,
    deliver_announcements: bool = True,
    metrics: Metrics | None = None,
) -> Dispatcher:
    """`metrics` defaults to the core's; updates, handling time, searches and errors are counted there."""
    metrics = metrics or core.metrics
    i18n = build_i18n()
    isolation = None
    buckets = None
    if core.redis is not None:
        # Several processes serve the bot: conversation state, locks and rate limits live in Redis.
        from storage.redis_state import RedisBuckets, ResilientEventIsolation, ResilientRedisStorage

        storage = storage or ResilientRedisStorage(core.redis)
        isolation = ResilientEventIsolation(core.redis)
        buckets = RedisBuckets(
            core.redis, throttle_rate, throttle_burst, fallback=TokenBuckets(throttle_rate, throttle_burst)
        )
    dp = Dispatcher(
        storage=storage or ExpiringMemoryStorage(),
        events_isolation=isolation,
        i18n=i18n,
        nearby=NearbyService(
            core.search,
            core.stations,
            observe_search=metrics.observe_search if metrics else None,
            demand=core.demand.counter,
            channel=Channel.BOT,
        ),
        stations=core.stations,
        roles=core.roles,
        reports=core.reports,
        station_admin=core.station_admin,
        ratings=core.ratings,
        subscriptions=core.subscriptions,
        announcements=core.announcements,
        privacy=core.privacy,
        evaluation=core.evaluation,
        public_url=core.settings.public_url,
        clock=clock,
        default_tz=core.settings.default_tz,
        metrics=metrics,
    )
    # Ours, outermost first; aiogram's error and user-context middlewares are outside all of them.
    dp.update.outer_middleware(UpdateContextMiddleware(metrics))
    if core.redis is not None:
        from storage.redis_state import UpdateLedger

        dp.update.outer_middleware(UpdateOnceMiddleware(UpdateLedger(core.redis)))
    dp.update.outer_middleware(
        ThrottlingMiddleware(i18n, rate=throttle_rate, burst=throttle_burst, buckets=buckets)
    )
    users = user_cache(core.redis)
    dp.update.outer_middleware(UserSessionMiddleware(core.sessions, users))
    dp.update.outer_middleware(LocaleMiddleware(i18n))
    dp.include_routers(
        search.create_fast_router(),
        start.create_router(),
        # Before the journeys: /forget and /privacy work in the middle of any step.
        privacy.create_router(),
        moderation.create_router(),
        reports.create_router(),
        # Before search: its location and text handlers take whatever no state claimed.
        announcements.create_router(),
        search.create_router(),
    )
    dp.errors.register(_on_error, ExceptionTypeFilter(Exception))
    dp.startup.register(_on_startup)
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()

    async def start_background(bot: Bot) -> None:
        stop.clear()
        tasks.append(asyncio.create_task(digest_loop(bot, core, i18n, clock)))
        tasks.append(asyncio.create_task(users.follow(stop)))
        tasks.append(asyncio.create_task(core.privacy.run_retention(clock, stop)))
        if deliver_announcements:
            from bot.broadcast import build_broadcaster

            broadcaster = build_broadcaster(core, bot, i18n, clock, metrics=metrics)
            tasks.append(asyncio.create_task(broadcaster.run(stop)))

    async def stop_background() -> None:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        tasks.clear()

    dp.startup.register(start_background)
    dp.shutdown.register(stop_background)
    return dp


async def _on_error(
    event: ErrorEvent, bot: Bot, i18n: I18n, user: User | None = None, metrics: Metrics | None = None
) -> None:
    if metrics is not None:
        metrics.error("bot")
    update = event.update
    user_id = None
    language_code = None
    chat_id = None
    inner = update.event
    if getattr(inner, "from_user", None) is not None:
        user_id = inner.from_user.id  # type: ignore[attr-defined]
        language_code = inner.from_user.language_code  # type: ignore[attr-defined]
    if isinstance(inner, Message):
        chat_id = inner.chat.id
    elif getattr(inner, "message", None) is not None:
        chat_id = inner.message.chat.id  # type: ignore[attr-defined]
    # The log context middleware runs inside aiogram's error middleware: its context is gone by now.
    with log_context(update.update_id, user_id):
        log.error(
            "update %s from user %s failed: %r",
            update.update_id,
            user_id,
            event.exception,
            exc_info=event.exception,
        )
        if chat_id is None:
            return
        # The locale middleware's context is gone too: translate explicitly.
        from storage.redis_state import StateUnavailable

        unavailable = isinstance(event.exception, StateUnavailable)

        def apology() -> str:
            if unavailable:
                return i18n.gettext("This step cannot be saved right now. Please try again in a moment.")
            return i18n.gettext("Sorry, something went wrong. Please try again in a moment.")

        await tell(bot, i18n, chat_id, effective_locale(user, language_code), apology, about="the error")


async def _on_startup(bot: Bot) -> None:
    """Commands and descriptions per language; failures here are logged and never stop the bot."""
    i18n = build_i18n()
    # Telegram keys these by two-letter language code; the registry says which language fills which.
    menus = [(code or None, language.locale) for language in LANGUAGES for code in language.menu_codes]
    for language_code, locale in menus:
        commands = [
            BotCommand(command="start", description=i18n.gettext("Find stations near me", locale=locale)),
            BotCommand(command="help", description=i18n.gettext("How to use this bot", locale=locale)),
            BotCommand(command="language", description=i18n.gettext("Change the language", locale=locale)),
            BotCommand(
                command="subscribe",
                description=i18n.gettext("News from the union about my area", locale=locale),
            ),
            BotCommand(command="unsubscribe", description=i18n.gettext("Stop the news", locale=locale)),
            BotCommand(
                command="privacy", description=i18n.gettext("What the bot keeps about me", locale=locale)
            ),
            BotCommand(command="forget", description=i18n.gettext("Delete my data", locale=locale)),
        ]
        description = i18n.gettext(
            "Share your location and find the nearest union service station for outdoor workers that is "
            "open now: water, rest, a microwave, charging, a toilet.",
            locale=locale,
        )
        for call in (
            bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=language_code),
            bot.set_my_description(description, language_code=language_code),
        ):
            try:
                await call
            except Exception:
                log.warning("start-up call failed (language %s)", language_code, exc_info=True)


DIGEST_POLL_S = 60.0


async def send_digests(bot: Bot, core: Core, i18n: I18n, at: datetime) -> int:
    """Tell each staff member about new cases in their region, at most every 10 minutes each, and at once
    when automatic hiding paused in their region."""
    from aiogram.utils.i18n import gettext as _

    from handlers.views import case_line, pause_alert

    def digest_text(digest: StaffDigest) -> str:
        # A region's pause, in the timezone of the stations that name none (China's, by default).
        lines = [pause_alert(pause, ZoneInfo(core.settings.default_tz)) for pause in digest.pauses]
        if digest.cases:
            lines.append(_("📬 <b>New reports in your region: {count}</b>").format(count=len(digest.cases)))
            lines += [case_line(case) for case in digest.cases[:10]]
        lines.append(_("Open the queue with /reports."))
        return "\n\n".join(lines)

    due = await core.reports.due_digests(await core.roles.moderators(), at)
    sent = 0
    for user_id, digest in due.items():
        async with core.sessions() as session:
            locale = await UserService(session).locale_of(user_id)
        if not await tell(bot, i18n, user_id, locale, partial(digest_text, digest), about="the digest"):
            continue
        try:
            await core.reports.digest_sent(user_id, at)
            sent += 1
        except Exception:
            log.warning("could not record the digest sent to staff %s", user_id, exc_info=True)
    return sent


async def tell_outcomes(bot: Bot, core: Core, i18n: I18n) -> int:
    """The reporters of cases decided in the staff console hear the outcome as if it had been decided in
    the bot (each case taken by one replica only). Returns the cases told."""
    from handlers.moderation import tell_reporters

    results = await core.reports.outcomes_to_tell()
    for result in results:
        async with core.sessions() as session:
            await tell_reporters(result, bot, i18n, UserService(session))
    return len(results)


async def digest_loop(bot: Bot, core: Core, i18n: I18n, clock: Callable[[], datetime]) -> None:
    while True:
        try:
            await send_digests(bot, core, i18n, clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("staff digest round failed")
        try:
            await tell_outcomes(bot, core, i18n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("telling the outcomes of console decisions failed")
        await asyncio.sleep(DIGEST_POLL_S)


async def ensure_webhook(bot: Bot, core: Core, url: str, secret: str | None) -> bool:
    """Point Telegram at `url` once, not from every replica at every start: with Redis the replicas agree
    through a lock and a fingerprint of (url, secret); without it, an unchanged URL is left alone.
    Stopping a replica never removes the webhook. True when this call set it."""
    import hashlib

    fingerprint = hashlib.sha256(f"{url}\n{secret or ''}".encode()).hexdigest()
    if core.redis is not None:
        key = f"yizhan:webhook:{bot.id}"
        try:
            if (await core.redis.get(key) or b"").decode() == fingerprint:
                return False
            async with core.redis.lock(key + ":lock", timeout=30, blocking_timeout=30):
                if (await core.redis.get(key) or b"").decode() == fingerprint:
                    return False
                await bot.set_webhook(url, secret_token=secret, drop_pending_updates=False)
                await core.redis.set(key, fingerprint)
                return True
        except Exception:
            log.warning(
                "could not coordinate the webhook through Redis; checking Telegram instead", exc_info=True
            )
    info = await bot.get_webhook_info()
    if info.url == url and secret is None:
        return False
    await bot.set_webhook(url, secret_token=secret, drop_pending_updates=False)
    return True


def tune_runtime() -> None:
    """After start-up: freeze what is loaded so far out of the collector and collect young objects less
    often (the bot allocates many short-lived objects per update)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def run_polling(core: Core, bot: Bot, dp: Dispatcher) -> None:
    await bot.delete_webhook(drop_pending_updates=False)
    tune_runtime()
    await dp.start_polling(bot, handle_signals=True, tasks_concurrency_limit=64)


#: Telegram allows 1-256 of these characters; fewer than 32 can be guessed offline or read over a shoulder.
_SECRET = re.compile(r"[A-Za-z0-9_-]{32,256}")


class WebhookSecretMissing(YizhanError):
    """Webhook mode without a strong secret: anyone could post updates as any user (an admin's /grant)."""


def require_webhook_secret(settings: Settings) -> str:
    """The webhook secret, or `WebhookSecretMissing` with a one-line message for the operator."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not _SECRET.fullmatch(secret):
        raise WebhookSecretMissing(
            "webhook mode needs WEBHOOK_SECRET: 32 to 256 characters of A-Z, a-z, 0-9, _ and - "
            "(for example the output of `openssl rand -hex 32`)"
        )
    return secret


class SecretRequestHandler(SimpleRequestHandler):
    """aiogram's webhook handler, but a request without the exact secret header is refused with 403 and
    never reaches the dispatcher, and an empty secret refuses everything instead of accepting everything."""

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        expected = (self.secret_token or "").encode()
        given = telegram_secret_token.encode("utf-8", "replace")
        return bool(expected) and secrets.compare_digest(given, expected)

    async def handle(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not self.verify_secret(token, self.bot):
            return web.Response(text="Forbidden", status=403)
        return await super().handle(request)


class ListenError(Exception):
    """The webhook server could not listen on host:port (the command line says so in one line)."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {error}")
        self.host, self.port, self.error = host, port, error


async def serve_webhook(
    core: Core, bot: Bot, dp: Dispatcher, host: str, port: int, ready: asyncio.Event | None = None
) -> None:
    from aiogram.webhook.aiohttp_server import setup_application

    settings = core.settings
    assert settings.webhook_url
    secret = require_webhook_secret(settings)
    from urllib.parse import urlsplit

    from bot.web import build_web_app
    from bot.web.h5 import setup_h5
    from bot.web.server import runner as web_runner
    from bot.web.server import site as listening_site

    path = urlsplit(settings.webhook_url).path or "/webhook"
    # One app per replica: the webhook beside the public API, the H5 page and /healthz; Telegram's updates
    # have an admission lane of their own there.
    app = build_web_app(core, bot_path=path)
    setup_h5(
        app, tile_url=settings.map_tile_url, tiles=settings.map_tiles, tianditu_key=settings.tianditu_key
    )
    # Processing before answering 200 lets Telegram redeliver an update whose handling failed.
    SecretRequestHandler(dp, bot, secret_token=secret, handle_in_background=False).register(app, path)
    setup_application(app, dp, bot=bot)
    runner = web_runner(app, settings)
    await runner.setup()
    try:
        try:
            await listening_site(runner, host, port).start()
        except OSError as exc:
            raise ListenError(host, port, exc) from exc
        # Telegram hears of the URL only once this replica listens on it.
        await ensure_webhook(bot, core, settings.webhook_url, secret)
        tune_runtime()
        log.info("webhook mode on %s:%d for %s", host, port, settings.webhook_url)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
