"""The console's import page: upload a station sheet, read its dry run, commit exactly that file, watch it
run, and the region's import history (bot/services/imports.py does the work and keeps the scope).

The upload is read part by part from the multipart body and written as it arrives; it stops the moment it
passes IMPORT_MAX_BYTES (htmx sends the CSRF token as a header, so nothing reads the body before this
handler; a form posted without JavaScript was read by the CSRF check, within the same limit). A run's page
polls its status fragment with htmx while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from bot.services.imports import (
    ImportExpired,
    ImportNotFound,
    ImportNotReady,
    ImportRun,
    RunStatus,
    Upload,
    column_label,
)
from bot.web.console.base import (
    PREFIX,
    client_ip,
    console_page,
    console_user,
    core_of,
    gettext_for,
    now,
    render,
)
from domain.messages import translated
from domain.values import YizhanError

log = logging.getLogger(__name__)

PATH = PREFIX + "/import"
CHUNK = 256 * 1024
#: The slowest an upload may arrive on average (bytes a second) before it is cut off.
MIN_RATE = 256 * 1024
HISTORY = 20
#: Rejected rows shown on a run's page (the counts are always whole; the run keeps up to 1000).
SHOWN_ERRORS = 1000


def _file_name(raw: str) -> str:
    """The name as typed on the clerk's computer: some clients percent-encode a non-ASCII name."""
    if "%" in raw:
        try:
            return unquote(raw, errors="strict")
        except UnicodeDecodeError:
            pass
    return raw


def _is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _run_id(request: web.Request) -> int:
    raw = request.match_info["run"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


def _problems(run: ImportRun, gettext: Any, locale: str) -> list[dict[str, Any]]:
    """Each rejected row's problems as (column, reason) in the reader's language."""
    rows = []
    for error in run.errors[:SHOWN_ERRORS]:
        problems = error.problems or (error.reason,)
        rows.append(
            {
                "row": error.row,
                "unit": error.unit,
                "problems": [
                    {
                        "column": column_label(error.column_of(i), locale),
                        "reason": translated(problem, gettext),
                    }
                    for i, problem in enumerate(problems)
                ],
            }
        )
    return rows


async def _run_context(request: web.Request, run: ImportRun) -> dict[str, Any]:
    user = await console_user(request)
    gettext = gettext_for(request)
    percent = 0
    if run.running and run.total_rows:
        percent = min(100, round(100 * run.rows_done / run.total_rows))
    return {
        "run": run,
        "status": run.status.value,
        "rejected_rows": _problems(run, gettext, user.locale),
        "warnings": [translated(w, gettext) for w in run.warnings],
        "file_error": translated(run.file_error, gettext) if run.file_error else None,
        "percent": percent,
        "mine": run.actor_id == user.actor_id,
        "shown_errors": min(len(run.errors), SHOWN_ERRORS),
    }


@console_page
async def import_page(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    core = core_of(request)
    history = await core.imports.recent_imports(user.access, HISTORY, actor_id=user.actor_id)
    return await render(
        request,
        "imports/index.html",
        {"history": history, "max_mb": core.imports.limits.max_bytes / 1024**2, "error": None},
    )


async def _receive(request: web.Request, upload_of: Any, idle_s: float) -> Upload | None:
    """The file of the upload form, written as it arrives; None when the form holds none. A client that
    sends nothing for `idle_s` seconds, or takes longer than the limit allows at 256 KiB/s, is cut off."""
    if request.headers.get("X-CSRF-Token") is not None and request.content_type == "multipart/form-data":
        limit = core_of(request).imports.limits.max_bytes
        async with asyncio.timeout(idle_s + limit / MIN_RATE):
            reader = await request.multipart()
            while True:
                async with asyncio.timeout(idle_s):
                    part = await reader.next()
                if part is None:
                    return None
                if not isinstance(part, BodyPartReader) or part.name != "file" or not part.filename:
                    continue
                upload = await upload_of(_file_name(part.filename))
                try:
                    while True:
                        async with asyncio.timeout(idle_s):
                            chunk = await part.read_chunk(CHUNK)
                        if not chunk:
                            break
                        await upload.write(chunk)
                except BaseException:
                    await upload.discard()
                    raise
                return upload
    # A form posted without JavaScript: the CSRF check read it already (bounded by the same limit).
    form = await request.post()
    field = form.get("file")
    if not isinstance(field, web.FileField) or not field.filename:
        return None
    upload = await upload_of(_file_name(field.filename))
    try:
        while chunk := field.file.read(CHUNK):
            await upload.write(chunk)
    except BaseException:
        await upload.discard()
        raise
    return upload


@console_page
async def upload_file(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    core = core_of(request)
    _ = gettext_for(request)
    limits = core.imports.limits

    async def upload_of(file_name: str) -> Upload:
        return await core.imports.upload(file_name, user.access)

    error: str | None = None
    try:
        if request.content_length is not None and request.content_length > limits.max_bytes + 64 * 1024:
            raise core.imports.too_large(request.content_length)
        try:
            upload = await _receive(request, upload_of, core.settings.http_body_timeout)
        except TimeoutError:
            log.warning("console: %s's upload stopped arriving", user.username)
            request.protocol.force_close()
            raise web.HTTPRequestTimeout() from None
        if upload is None:
            error = _("Choose a CSV or XLSX file first.")
        else:
            run = await core.imports.check(upload, user.access, user.actor_id)
            log.info("console: %s uploaded %s (import %d)", user.username, run.file_name, run.id)
            await core.console.record(
                now(request),
                "import_check",
                account_id=user.account_id,
                username=user.username,
                address=client_ip(request),
                target=str(run.id),
                detail={"file": run.file_name, "bytes": run.file_bytes},
            )
            location = f"{PATH}/{run.id}"
            if _is_htmx(request):
                return web.Response(status=204, headers={"HX-Redirect": location})
            raise web.HTTPSeeOther(location)
    except YizhanError as exc:
        error = translated(getattr(exc, "reason", str(exc)), _)
    if _is_htmx(request):
        return await render(request, "imports/upload_error.html", {"error": error}, status=400)
    history = await core.imports.recent_imports(user.access, HISTORY, actor_id=user.actor_id)
    return await render(
        request,
        "imports/index.html",
        {"history": history, "max_mb": limits.max_bytes / 1024**2, "error": error},
        status=400,
    )


async def _run_or_404(request: web.Request) -> ImportRun:
    user = await console_user(request)
    try:
        return await core_of(request).imports.run(_run_id(request), user.access, user.actor_id)
    except ImportNotFound:
        raise web.HTTPNotFound() from None


@console_page
async def run_page(request: web.Request) -> web.StreamResponse:
    run = await _run_or_404(request)
    context = await _run_context(request, run)
    context["notice"] = None
    return await render(request, "imports/run.html", context)


@console_page
async def run_status(request: web.Request) -> web.StreamResponse:
    """The fragment the run's page polls while the run runs; the full result once it is over."""
    run = await _run_or_404(request)
    context = await _run_context(request, run)
    context["notice"] = None
    return await render(request, "imports/status.html", context)


@console_page
async def commit_run(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    core = core_of(request)
    _ = gettext_for(request)
    run_id = _run_id(request)
    notice: str | None = None
    try:
        await core.imports.commit(run_id, user.access, user.actor_id)
    except ImportNotFound:
        raise web.HTTPNotFound() from None
    except ImportExpired:
        notice = _("This file was kept for its time and is gone: upload it again.")
    except ImportNotReady as exc:
        if exc.status in (RunStatus.COMMITTING, RunStatus.DONE):
            notice = _("This file is already imported; it is imported once.")
        else:
            notice = _("This file cannot be imported now.")
    if notice is None:
        log.info("console: %s committed import %d", user.username, run_id)
        await core.console.record(
            now(request),
            "import_commit",
            account_id=user.account_id,
            username=user.username,
            address=client_ip(request),
            target=str(run_id),
        )
        raise web.HTTPSeeOther(f"{PATH}/{run_id}")
    run = await _run_or_404(request)
    context = await _run_context(request, run)
    context["notice"] = notice
    return await render(request, "imports/run.html", context, status=409)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/import", import_page, name="console_import")
    app.router.add_post("/import", upload_file, name="console_import_upload")
    app.router.add_get("/import/{run}", run_page, name="console_import_run")
    app.router.add_get("/import/{run}/status", run_status, name="console_import_status")
    app.router.add_post("/import/{run}/commit", commit_run, name="console_import_commit")
