"""What every console page shares: who is asking (`console_user`, `@console_page`), rendering in their
language (`render`), the session's expiry, CSRF and the console's error pages (`console_middleware`).

A page handler:

    @console_page
    async def station_page(request: web.Request) -> web.StreamResponse:
        user = await console_user(request)              # cached per request
        station = await core_of(request).station_admin.station(code, user.access)
        user.access.require_staff_for(station.region)   # the server checks the scope, every time
        return await render(request, "stations/station.html", {"station": station})

- `@console_page` sends a visitor without a valid session to `/console/login?next=…` (an htmx request gets
  `HX-Redirect` instead, so the whole page goes there, not a fragment).
- Region scope is checked on the server in every handler, read or write: `user.access.require_staff_for(
  region)`, `user.access.can_manage(region)` to filter, `user.access.require_admin()`; services take the
  `Access` and check too. A `NotAllowed` anywhere becomes a 403 page; a hidden link is not a check.
- Every unsafe request (POST, PUT, PATCH, DELETE) carries the session's CSRF token: forms get it with
  `{{ csrf_field() }}`, htmx sends it as `X-CSRF-Token` (set by `hx-headers` on `<body>`). A request without
  it is refused with a 403 page before any handler runs. A multipart form (an upload) is read up to
  IMPORT_MAX_BYTES for the check; the handler then reads `await request.post()` (cached).
- Privileged actions are audited: `await core_of(request).console.record(now(request), "station_edit",
  account_id=user.account_id, username=user.username, address=client_ip(request), target=code, detail=…)`,
  and station changes go through the services with `user.access` (their audit rows carry `user.actor_id`).
- Templates extend `base.html` (blocks `title`, `content`, `scripts`) and translate with `{{ _("…") }}` or
  `{% trans %}`; `make extract` picks them up.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot.app import Core
from bot.i18n import DEFAULT_LOCALE, LOCALES, translator
from bot.services.roles import Access, NotAllowed
from bot.web.admission import client_address, trusted_networks
from bot.web.assets import StaticAssets
from bot.web.console.telegram_photos import PhotoUnavailable, TelegramPhotos
from bot.web.h5 import preferred_locale, resolve_locale
from domain.clock import Clock

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX = "/console"
LOGIN_PATH = PREFIX + "/login"
#: Pages a visitor without a session may use (each still needs the CSRF token to POST).
PUBLIC_PATHS = frozenset({LOGIN_PATH, PREFIX + "/setup", PREFIX + "/language"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: `seen_at` is written back at most this often (each write re-sends the cookie or a Redis SET).
SEEN_RESOLUTION_S = 60.0
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # Setup links carry their token in the query: it must not leave in a Referer.
    "Referrer-Policy": "same-origin",
}


@dataclass(slots=True)
class ConsoleState:
    """The console's long-lived objects (`request.app[CONSOLE]`); tests may replace `clock`."""

    core: Core
    clock: Clock
    idle: timedelta
    absolute: timedelta
    assets: StaticAssets
    vendor: StaticAssets
    trusted: tuple[Any, ...] = ()
    upload_max_bytes: int = 1024**2
    extra: dict[str, Any] = field(default_factory=dict)
    #: Report photos from Telegram (`telegram_photos.py`); None without a bot token.
    photos: TelegramPhotos | None = None


CONSOLE: web.AppKey[ConsoleState] = web.AppKey("console", ConsoleState)
LOCALE_KEY: web.RequestKey[str] = web.RequestKey("console_locale", str)
#: Set when this request found its session idle or too old (the login page then says so).
EXPIRED_KEY: web.RequestKey[bool] = web.RequestKey("console_expired", bool)


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    account_id: int
    username: str
    #: The id the account acts as (roles, audit): its Telegram id when linked, else minus `account_id`.
    actor_id: int
    access: Access
    locale: str

    @property
    def is_admin(self) -> bool:
        return self.access.is_admin


USER_KEY: web.RequestKey[ConsoleUser] = web.RequestKey("console_user", ConsoleUser)


class LoginRequired(Exception):
    """No valid session: the middleware sends the visitor to the login page."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("login required")
        self.expired = expired


def state_of(request: web.Request) -> ConsoleState:
    return request.config_dict[CONSOLE]


def core_of(request: web.Request) -> Core:
    return request.config_dict[CONSOLE].core


def now(request: web.Request) -> datetime:
    return state_of(request).clock()


def client_ip(request: web.Request) -> str:
    """The client's address (X-Forwarded-For only from TRUSTED_PROXIES), for limits and the audit."""
    return client_address(request, state_of(request).trusted)


def safe_next(value: str | None) -> str:
    """A console path to go back to after logging in; anything else (another site, `//host`) is the
    dashboard."""
    if not value:
        return PREFIX + "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/") or value.startswith("//"):
        return PREFIX + "/"
    if "\\" in value or any(ord(c) < 32 for c in value):
        return PREFIX + "/"
    return value


def login_url(next_path: str | None = None, expired: bool = False) -> str:
    url = LOGIN_PATH
    params = []
    if next_path and safe_next(next_path) != PREFIX + "/":
        params.append("next=" + quote(next_path, safe="/"))
    if expired:
        params.append("expired=1")
    return url + ("?" + "&".join(params) if params else "")


async def console_user(request: web.Request) -> ConsoleUser:
    """The logged-in staff member, checked against the database once per request: the account exists,
    is enabled, its sessions were not ended after this one's login, and it still has a staff role.
    Raises `LoginRequired` (no or ended session) or `NotAllowed` (no staff role)."""
    cached = request.get(USER_KEY)
    if cached is not None:
        return cached
    session = await get_session(request)
    account_id = session.get("account_id")
    if not isinstance(account_id, int):
        raise LoginRequired(expired=bool(request.get(EXPIRED_KEY)))
    core = core_of(request)
    account = await core.console.get(account_id)
    auth_at = float(session.get("auth_at", 0))
    if (
        account is None
        or account.disabled
        or (account.sessions_valid_after is not None and auth_at <= account.sessions_valid_after.timestamp())
    ):
        session.invalidate()
        raise LoginRequired(expired=True)
    access = await core.roles.access(account.actor_id)
    locale = account.locale if account.locale in LOCALES else request_locale(request)
    user = ConsoleUser(account.id, account.username, account.actor_id, access, locale or DEFAULT_LOCALE)
    request[USER_KEY] = user
    request[LOCALE_KEY] = user.locale
    if not access.is_staff:
        raise NotAllowed(f"console account {account.username} has no staff role")
    return user


def console_page(handler: Handler) -> Handler:
    """Only for a logged-in staff member (see the module's docstring)."""

    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        await console_user(request)
        return await handler(request)

    return page


def request_locale(request: web.Request) -> str:
    """The language of a page: the account's choice, else the session's, else `?lang=`, else the
    browser's Accept-Language."""
    chosen = request.get(LOCALE_KEY)
    if chosen:
        return str(chosen)
    return (
        resolve_locale(request.query.get("lang", ""))
        or preferred_locale(request.headers.get("Accept-Language"))
        or DEFAULT_LOCALE
    )


def gettext_for(request: web.Request) -> Callable[[str], str]:
    return translator(request_locale(request)).gettext


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    """`template` rendered in the visitor's language with what `base.html` needs (the user, the CSRF
    token, the navigation)."""
    user = request.get(USER_KEY)
    locale = user.locale if user is not None else request_locale(request)
    base: dict[str, Any] = {
        "user": user,
        "locale": locale,
        "csrf_token": await csrf_token(request),
        "path": request.path,
        "path_qs": request.path_qs,
        "static_url": state_of(request).assets.url,
        "vendor_url": state_of(request).vendor.url,
        "languages": LANGUAGE_CHOICES,
        "nav": NAV,
    }
    base.update(context or {})
    response = aiohttp_jinja2.render_template(template, request, base, status=status)
    response.headers["Content-Language"] = locale.replace("_", "-")
    return response


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


#: The navigation of base.html: (key, path, label). A page module owns the path under its key.
NAV: tuple[tuple[str, str, str], ...] = (
    ("dashboard", PREFIX + "/", N_("Dashboard")),
    ("stations", PREFIX + "/stations", N_("Stations")),
    ("import", PREFIX + "/import", N_("Import")),
    ("moderation", PREFIX + "/moderation", N_("Moderation")),
    ("announcements", PREFIX + "/announcements", N_("Announcements")),
    ("analytics", PREFIX + "/analytics", N_("Analytics")),
)
LANGUAGE_CHOICES: tuple[tuple[str, str], ...] = (
    ("zh_Hans", "简体中文"),
    ("zh_Hant", "繁體中文"),
    ("en", "English"),
)


async def error_page(request: web.Request, status: int, message: str) -> web.Response:
    try:
        return await render(request, "error.html", {"status": status, "message": message}, status=status)
    except Exception:  # the error page itself must not fail: plain text then
        log.exception("console: cannot render the error page")
        return web.Response(status=status, text=message)


def _is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _login_redirect(request: web.Request, expired: bool) -> web.StreamResponse:
    if _is_htmx(request):
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        back = current.path + ("?" + current.query if current.query else "") if current.path else None
        # htmx follows HX-Redirect whatever the status; a 401 keeps anything else from swapping it in.
        return web.Response(status=401, headers={"HX-Redirect": login_url(back, expired)})
    if request.method in UNSAFE_METHODS:
        # Back to the page the form was on (its typed values are kept in the browser: static/console.js).
        referer = urlsplit(request.headers.get("Referer", ""))
        back = referer.path + ("?" + referer.query if referer.query else "") if referer.path else None
        raise web.HTTPSeeOther(login_url(back, expired))
    raise web.HTTPSeeOther(login_url(request.path_qs, expired))


def console_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Inside aiohttp-session's middleware, for every console request but its static files:

    - the session's idle (`CONSOLE_IDLE_MINUTES`) and absolute (`CONSOLE_SESSION_HOURS`) expiry, from the
      times written in it, and its CSRF token;
    - CSRF: an unsafe request without the session's token is refused (403), or, when the session is over,
      sent to the login page (nothing was done);
    - `LoginRequired` → the login page; `NotAllowed` → 403; an HTTP error → the console's error page in the
      visitor's language; anything unexpected is logged and answered with a 500 page."""

    @web.middleware
    async def console(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith((PREFIX + "/static/", PREFIX + "/vendor/")):
            return await handler(request)
        state = state_of(request)
        session: Any = {}
        response: web.StreamResponse
        try:
            session = await get_session(request)
            at = state.clock().timestamp()
            if "account_id" in session:
                auth_at = float(session.get("auth_at", 0))
                seen_at = float(session.get("seen_at", 0))
                if at - seen_at > state.idle.total_seconds() or at - auth_at > state.absolute.total_seconds():
                    locale = session.get("locale")
                    session.clear()
                    if locale:
                        session["locale"] = locale
                    request[EXPIRED_KEY] = True
                elif at - seen_at > SEEN_RESOLUTION_S:
                    session["seen_at"] = at
            if session.get("locale") in LOCALES:
                request[LOCALE_KEY] = session["locale"]
            if request.method in UNSAFE_METHODS:
                if request.content_type == "multipart/form-data":
                    # A file: read only for a logged-in staff member (no body is read for anyone else),
                    # up to IMPORT_MAX_BYTES (and a megabyte of form around it).
                    if "account_id" not in session:
                        raise LoginRequired(expired=bool(request.get(EXPIRED_KEY)))
                    request = request.clone(client_max_size=state.upload_max_bytes)
                if not await _csrf_ok(request, session):
                    if "account_id" not in session and path not in PUBLIC_PATHS:
                        raise LoginRequired(expired=bool(request.get(EXPIRED_KEY)))
                    log.warning("console: CSRF token missing or wrong for %s %s", request.method, path)
                    _ = gettext_for(request)
                    response = await error_page(
                        request,
                        403,
                        _(
                            "This form has expired or did not come from this site. "
                            "Reload the page and try again."
                        ),
                    )
                    response.headers.update(SECURITY_HEADERS)
                    return response
            response = await handler(request)
        except LoginRequired as exc:
            try:
                response = _login_redirect(request, exc.expired)
            except web.HTTPException as redirect:
                redirect.headers.update(SECURITY_HEADERS)
                raise
        except NotAllowed as exc:
            log.warning("console: refused %s %s: %s", request.method, path, exc)
            _ = gettext_for(request)
            response = await error_page(request, 403, _("You may not see or change this."))
        except web.HTTPException as exc:
            if exc.status < 400:
                exc.headers.update(SECURITY_HEADERS)
                raise
            if exc.status == 404 and "account_id" not in session:
                # Which pages exist is for staff to know: a visitor without a session logs in first.
                try:
                    response = _login_redirect(request, bool(request.get(EXPIRED_KEY)))
                except web.HTTPException as redirect:
                    redirect.headers.update(SECURITY_HEADERS)
                    raise
                return response
            _ = gettext_for(request)
            message = {
                404: _("There is no such page."),
                405: _("This page does not take that request."),
                413: _("The file is too large."),
            }.get(exc.status, exc.reason)
            response = await error_page(request, exc.status, message)
        except Exception:
            log.exception("console: unhandled error for %s %s", request.method, path)
            _ = gettext_for(request)
            response = await error_page(request, 500, _("Something went wrong; it has been logged."))
        response.headers.update(SECURITY_HEADERS)
        return response

    return console


async def _csrf_ok(request: web.Request, session: Any) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected:
        return False
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        content_type = request.content_type
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def trusted_of(core: Core) -> tuple[Any, ...]:
    return trusted_networks(core.settings.trusted_proxies)


async def photo_response(request: web.Request, file_id: str, what: str) -> web.Response:
    """A photo riders or staff sent the bot, fetched from Telegram (`telegram_photos.py`), for a page
    whose handler has already checked the user may see `what` owns it; 404 without a bot token or when
    Telegram has no such file. Not kept by the browser (the console's `no-store`: union offices share PCs)."""
    photos = request.app[CONSOLE].photos
    if photos is None:
        raise web.HTTPNotFound()
    try:
        data, content_type = await photos.fetch(file_id)
    except PhotoUnavailable as exc:
        log.info("console: the photo of %s is unavailable: %s", what, exc)
        raise web.HTTPNotFound() from None
    return web.Response(body=data, content_type=content_type, headers={"X-Content-Type-Options": "nosniff"})
