"""Logging in and out of the console, a setup link's first password, and the language switch.

A login replaces the session (a new identity and CSRF token: a session planted before cannot be taken
over); logging out ends this session, "log out everywhere" every session of the account.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable

from aiohttp import web
from aiohttp_session import get_session, new_session

from bot.i18n import LOCALES
from bot.services.console_accounts import MIN_PASSWORD, AccountError, LoginStatus
from bot.web.console.base import (
    EXPIRED_KEY,
    LOGIN_PATH,
    client_ip,
    console_page,
    console_user,
    core_of,
    gettext_for,
    now,
    render,
    safe_next,
)

MAX_FIELD = 1024


def _field(form: object, name: str) -> str:
    value = form.get(name, "") if hasattr(form, "get") else ""  # type: ignore[attr-defined]
    return value[:MAX_FIELD] if isinstance(value, str) else ""


async def login_page(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    session = await get_session(request)
    if "account_id" in session and not request.get(EXPIRED_KEY):
        try:
            await console_user(request)
            raise web.HTTPSeeOther(safe_next(request.query.get("next")))
        except web.HTTPException:
            raise
        except Exception:  # an ended session: the form
            pass
    notice = (
        _("Your session has ended; log in again. What you typed is kept.")
        if (request.query.get("expired") or request.get(EXPIRED_KEY))
        else ""
    )
    return await render(
        request,
        "login.html",
        {"next": safe_next(request.query.get("next")), "error": "", "notice": notice, "username": ""},
    )


async def login_submit(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await request.post()
    username, password = _field(form, "username"), _field(form, "password")
    target = safe_next(_field(form, "next"))
    core = core_of(request)
    result = await core.console.login(username, password, client_ip(request), now(request))
    if result.ok and result.account is not None:
        old = await get_session(request)
        locale = old.get("locale")
        old.invalidate()
        session = await new_session(request)
        at = now(request).timestamp()
        session["account_id"] = result.account.id
        session["auth_at"] = at
        session["seen_at"] = at
        session["csrf"] = secrets.token_urlsafe(32)
        if locale in LOCALES:
            session["locale"] = locale
        raise web.HTTPSeeOther(target)
    if result.status is LoginStatus.WRONG:
        error, status = _("Wrong username or password."), 401
    elif result.status is LoginStatus.WAIT:
        seconds = max(1, math.ceil(result.retry_after_s))
        error, status = (
            _("Too many failed attempts: wait {seconds} s before trying again.").format(seconds=seconds),
            429,
        )
    else:
        minutes = max(1, math.ceil(result.retry_after_s / 60))
        error, status = (
            _("Too many failed attempts: logging in is locked for {minutes} min.").format(minutes=minutes),
            429,
        )
    response = await render(
        request,
        "login.html",
        {"next": target, "error": error, "notice": "", "username": username[:64]},
        status=status,
    )
    if status == 429:
        response.headers["Retry-After"] = str(max(1, math.ceil(result.retry_after_s)))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    account_id = session.get("account_id")
    if isinstance(account_id, int):
        account = await core_of(request).console.get(account_id)
        await core_of(request).console.record(
            now(request),
            "logout",
            account_id=account_id,
            username=account.username if account else "",
            address=client_ip(request),
        )
    locale = session.get("locale")
    session.clear()
    if locale in LOCALES:
        session["locale"] = locale
    raise web.HTTPSeeOther(LOGIN_PATH)


@console_page
async def logout_everywhere(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    await core_of(request).console.logout_everywhere(user.account_id, now(request), client_ip(request))
    session = await get_session(request)
    session.clear()
    raise web.HTTPSeeOther(LOGIN_PATH)


async def choose_language(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    locale = _field(form, "locale")
    if locale not in LOCALES:
        raise web.HTTPBadRequest(reason="unknown language")
    session = await get_session(request)
    session["locale"] = locale
    account_id = session.get("account_id")
    if isinstance(account_id, int):
        await core_of(request).console.set_locale(account_id, locale)
    raise web.HTTPSeeOther(safe_next(_field(form, "next")))


async def setup_page(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    token = request.query.get("token", "")
    account = await core_of(request).console.setup_account(token)
    if account is None:
        return await render(
            request,
            "setup.html",
            {"token": "", "username": "", "error": _("This setup link is not valid or has expired.")},
            status=404,
        )
    return await render(request, "setup.html", {"token": token, "username": account.username, "error": ""})


async def setup_submit(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await request.post()
    token, password, again = _field(form, "token"), _field(form, "password"), _field(form, "password2")
    account = await core_of(request).console.setup_account(token)
    username = account.username if account is not None else ""
    if password != again:
        error = _("The two passwords differ.")
    else:
        try:
            await core_of(request).console.use_setup_link(token, password, now(request), client_ip(request))
        except AccountError as exc:
            error = account_error(exc, _)
        else:
            raise web.HTTPSeeOther(LOGIN_PATH)
    return await render(
        request, "setup.html", {"token": token, "username": username, "error": error}, status=400
    )


def account_error(exc: AccountError, _: Callable[[str], str]) -> str:
    """An account error in the visitor's language."""
    if exc.code == AccountError.PASSWORD_SHORT:
        return _("The password needs at least {count} characters.").format(count=MIN_PASSWORD)
    if exc.code == AccountError.PASSWORD_LONG:
        return _("The password is too long.")
    if exc.code == AccountError.SETUP_LINK:
        return _("This setup link is not valid or has expired.")
    return str(exc)


def add_routes(app: web.Application) -> None:
    """Paths are relative to the console's sub-application (`/login` is `/console/login`)."""
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout, name="logout")
    app.router.add_post("/logout-everywhere", logout_everywhere, name="logout_everywhere")
    app.router.add_post("/language", choose_language, name="language")
    app.router.add_get("/setup", setup_page, name="setup")
    app.router.add_post("/setup", setup_submit)
