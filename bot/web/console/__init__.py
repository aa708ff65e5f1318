"""The union staff's web console at `/console/`: server-rendered pages (aiohttp-jinja2, a little htmx) over
the same services as the bot's staff commands, for clerks who cannot open Telegram.

`setup_console(app, core)` mounts it as a sub-application with its own middlewares: aiohttp-session
(Redis when REDIS_URL is set, else encrypted cookies) and `base.console_middleware` (expiry, CSRF, error
pages). How to write a page, and the rules every page follows (region scope on the server, CSRF, audit):
`bot/web/console/base.py`'s docstring and docs/ARCHITECTURE.md ("How to add a console page").

Each page module has `add_routes(app)`; `PAGES` lists them, one line each.
"""

from __future__ import annotations

import base64
import importlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import AbstractStorage
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from markupsafe import Markup

from bot.app import Core
from bot.i18n import translator
from bot.web.assets import StaticAssets
from bot.web.console.base import CONSOLE, PREFIX, ConsoleState, console_middleware, trusted_of
from bot.web.console.telegram_photos import TelegramPhotos
from domain.clock import Clock, utc_now

__all__ = ["PAGES", "setup_console"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
VENDOR = HERE.parent / "static" / "vendor"
COOKIE_NAME = "yizhan_console"

#: The console's page modules (bot/web/console/<name>.py), one line each, each with `add_routes(app)`.
PAGES = (
    "login",
    "dashboard",
    "admin",
    "imports",
    "moderation",
    "announcements",
    "analytics",
    "stations",
)


@cache
def static_files(root: Path, prefix: str) -> StaticAssets:
    """The files under `root`, read and gzipped once per process (apps built later share them)."""
    return StaticAssets(root, prefix=prefix)


def session_storage(core: Core, secure: bool, max_age_s: int) -> AbstractStorage:
    """Redis when the core has it (sessions shared by every replica, ended on logout for good), else
    encrypted cookies under CONSOLE_SECRET_KEY (or a key of this process: sessions end when it stops)."""
    options = {
        "cookie_name": COOKIE_NAME,
        "path": PREFIX + "/",
        "httponly": True,
        "secure": secure,
        "samesite": "Lax",
        "max_age": max_age_s,
    }
    if core.redis is not None:
        from aiohttp_session.redis_storage import RedisStorage

        return RedisStorage(core.redis, **options)  # type: ignore[arg-type]
    secret = core.settings.console_secret_key
    if secret is not None and secret.get_secret_value():
        key: bytes | str = secret.get_secret_value()
        try:
            if len(base64.urlsafe_b64decode(key)) != 32:
                raise ValueError
        except ValueError:
            raise ValueError(
                "CONSOLE_SECRET_KEY must be 32 bytes in url-safe base64 (a Fernet key)"
            ) from None
    else:
        log.warning(
            "CONSOLE_SECRET_KEY is not set and there is no Redis: console sessions use a key of this "
            "process and end when it restarts"
        )
        key = secrets.token_bytes(32)  # raw bytes: the storage encodes them
    return EncryptedCookieStorage(key, **options)  # type: ignore[arg-type]


def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return translator(context.get("locale") or "zh_Hans").gettext(message)


def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return translator(context.get("locale") or "zh_Hans").ngettext(singular, plural, n)


def template_environment(app: web.Application, default_tz: str) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    # The catalogue is the one of the page's `locale`: one environment serves every language at once.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        jinja2.pass_context(_gettext), jinja2.pass_context(_ngettext), newstyle=True
    )

    @jinja2.pass_context
    def csrf_field(context: jinja2.runtime.Context) -> Markup:
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(context["csrf_token"])

    env.globals["csrf_field"] = csrf_field
    env.filters["local_time"] = local_time_filter(default_tz)
    return env


def local_time_filter(default_tz: str) -> Callable[..., str]:
    """`{{ at | local_time }}`: an aware datetime in the default timezone (`{{ at | local_time(tz) }}`
    in a station's own), as 2026-12-05 09:30."""

    def local_time(value: datetime | None, tz: str | None = None) -> str:
        if value is None:
            return ""
        try:
            zone = ZoneInfo(tz or default_tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo(default_tz)
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return local_time


def setup_console(
    app: web.Application, core: Core, *, secure_cookies: bool | None = None, clock: Clock | None = None
) -> web.Application:
    """Mount the console at `/console/` on `app`; its sub-application is returned (tests reach its state
    through `console_app[CONSOLE]`). `secure_cookies` is the default when CONSOLE_SECURE_COOKIES is unset
    (True unless the caller knows it serves plain HTTP on a loopback address)."""
    settings = core.settings
    secure = settings.console_secure_cookies
    if secure is None:
        secure = True if secure_cookies is None else secure_cookies
    absolute = timedelta(hours=settings.console_session_hours)
    console = web.Application(middlewares=[])
    console[CONSOLE] = ConsoleState(
        core=core,
        clock=clock or utc_now,
        idle=timedelta(minutes=settings.console_idle_minutes),
        absolute=absolute,
        assets=static_files(STATIC, PREFIX + "/static/"),
        vendor=static_files(VENDOR, PREFIX + "/vendor/"),
        trusted=trusted_of(core),
        upload_max_bytes=settings.import_max_bytes + 1024**2,
    )
    if settings.bot_token is not None and settings.bot_token.get_secret_value():
        photos = TelegramPhotos(settings.bot_token.get_secret_value(), settings.telegram_api_url)
        console[CONSOLE].photos = photos

        async def close_photos(_: web.Application) -> None:
            await photos.close()

        console.on_cleanup.append(close_photos)
    setup_sessions(console, session_storage(core, secure, int(absolute.total_seconds())))
    console.middlewares.append(console_middleware())
    template_environment(console, settings.default_tz)
    state = console[CONSOLE]
    console.router.add_get("/static/{path:.+}", state.assets.handle, name="console_static")
    console.router.add_get("/vendor/{path:.+}", state.vendor.handle, name="console_vendor")
    for name in PAGES:
        importlib.import_module(f"{__name__}.{name}").add_routes(console)
    app.add_subapp(PREFIX + "/", console)

    async def to_console(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect(PREFIX + "/")

    app.router.add_get(PREFIX, to_console, name="console_root")
    return console
