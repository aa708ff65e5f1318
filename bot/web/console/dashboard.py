"""The region dashboard (`/console/`): the figures of the regions the staff member manages, each a link to
the page that lists them."""

from __future__ import annotations

from aiohttp import web

from bot.web.console.base import N_, console_page, console_user, core_of, now, render

#: How the console names each station status (`StationStatus` values).
STATUS_LABELS = {
    "active": N_("In service"),
    "temporarily_closed": N_("Temporarily closed"),
    "closed": N_("Closed for good"),
}


@console_page
async def dashboard(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    # The service reads only the regions of `user.access` (all of them for an admin).
    core = core_of(request)
    summary = await core.dashboard.summary(user.access, now(request))
    # The import runs of the regions; stations' audit rows of imports stand in where no run is recorded.
    imports = await core.imports.recent_imports(user.access, limit=5)
    return await render(
        request,
        "dashboard.html",
        {"summary": summary, "imports": imports, "status_labels": STATUS_LABELS},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", dashboard, name="dashboard")
