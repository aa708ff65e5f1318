"""Admin pages of the console: the accounts (create with a setup link, link to a Telegram id, disable,
enable, a new setup link) and the console's audit (logins, failures, logouts, privileged actions).

Admins only, checked in every handler (`require_admin`); each change is recorded by the account service
with the admin's name."""

from __future__ import annotations

from urllib.parse import urljoin

from aiohttp import web

from bot.services.console_accounts import AccountError
from bot.web.console.base import (
    ConsoleUser,
    console_page,
    console_user,
    core_of,
    gettext_for,
    now,
    render,
)

PAGE_SIZE = 100


async def _admin(request: web.Request) -> ConsoleUser:
    user = await console_user(request)
    user.access.require_admin()
    return user


@console_page
async def audit_page(request: web.Request) -> web.StreamResponse:
    user = await _admin(request)
    before = request.query.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) < 19 else None
    events = await core_of(request).console.events(user.access, PAGE_SIZE + 1, before_id)
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    return await render(
        request,
        "audit.html",
        {"events": events, "next_before": events[-1].id if more and events else None},
    )


async def _accounts_page(
    request: web.Request, user: ConsoleUser, *, message: str = "", error: str = "", status: int = 200
) -> web.Response:
    accounts = await core_of(request).console.accounts()
    return await render(
        request,
        "accounts.html",
        {"accounts": accounts, "message": message, "error": error},
        status=status,
    )


@console_page
async def accounts_page(request: web.Request) -> web.StreamResponse:
    user = await _admin(request)
    return await _accounts_page(request, user)


def _setup_url(request: web.Request, token: str) -> str:
    base = core_of(request).settings.console_url
    return urljoin(base if base.endswith("/") else base + "/", "setup") + "?token=" + token


def _error_text(request: web.Request, exc: AccountError) -> str:
    _ = gettext_for(request)
    texts = {
        AccountError.USERNAME: _("A username has 2 to 64 characters: letters, digits and _ . @ -"),
        AccountError.EXISTS: _("There is already an account with that name."),
        AccountError.UNKNOWN: _("There is no such account."),
        AccountError.ROLE: _("Staff need a region (e.g. 44 or 4401); admins take none."),
        AccountError.TELEGRAM_ID: _("A Telegram id is a positive number."),
        AccountError.TELEGRAM_TAKEN: _("That Telegram id is linked to another account."),
    }
    return texts.get(exc.code, str(exc))


@console_page
async def account_action(request: web.Request) -> web.StreamResponse:
    user = await _admin(request)
    _ = gettext_for(request)
    service = core_of(request).console
    form = await request.post()
    action = request.match_info["action"]
    username = request.match_info["username"]
    by = f"console:{user.username}"
    at = now(request)
    try:
        if action == "link":
            raw = str(form.get("telegram_id", "")).strip()
            if not raw.isdigit() or len(raw) > 18:
                raise AccountError(AccountError.TELEGRAM_ID, "not a Telegram id")
            await service.link(username, int(raw), at, by=by)
            message = _("{username} now acts as Telegram id {id}.").format(username=username, id=raw)
        elif action in ("disable", "enable"):
            if action == "disable" and username == user.username:
                raise web.HTTPBadRequest(reason="an admin does not disable their own account")
            await service.set_disabled(username, action == "disable", at, by=by)
            message = (
                _("{username} is disabled.") if action == "disable" else _("{username} is enabled.")
            ).format(username=username)
        elif action == "setup-link":
            token = await service.new_setup_link(username, at, by=by)
            message = _("Setup link for {username} (valid 24 hours, once): {url}").format(
                username=username, url=_setup_url(request, token)
            )
        else:
            raise web.HTTPNotFound()
    except AccountError as exc:
        return await _accounts_page(request, user, error=_error_text(request, exc), status=400)
    return await _accounts_page(request, user, message=message)


@console_page
async def create_account(request: web.Request) -> web.StreamResponse:
    user = await _admin(request)
    _ = gettext_for(request)
    form = await request.post()
    username = str(form.get("username", "")).strip()[:64]
    role = str(form.get("role", ""))
    region = str(form.get("region", "")).strip()[:12]
    try:
        account, token = await core_of(request).console.create(
            username, role, region, now(request), setup_link=True, by=f"console:{user.username}"
        )
    except AccountError as exc:
        return await _accounts_page(request, user, error=_error_text(request, exc), status=400)
    assert token is not None
    message = _("Account {username} created. Setup link (valid 24 hours, once): {url}").format(
        username=account.username, url=_setup_url(request, token)
    )
    return await _accounts_page(request, user, message=message)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audit", audit_page, name="audit")
    app.router.add_get("/accounts", accounts_page, name="accounts")
    app.router.add_post("/accounts", create_account)
    app.router.add_post(r"/accounts/{username}/{action:link|disable|enable|setup-link}", account_action)
