"""Station imports from the console: upload, dry run, commit of exactly the file checked, and the history.

A clerk uploads a sheet; it is kept on the server under the id of its run (`import_runs`), checked in the
background (a dry run: what would be new, updated, unchanged, every rejected row with its column and reason,
the warnings) and shown. Committing imports that same file — never a second upload — once: the run moves from
`checked` to `committing` in one conditional update, so a double click or a second tab commits nothing more.
A checked file expires after `ttl` (the clerk uploads it again). Both steps run as background tasks that
report the rows they have read, so a page can poll the run for a progress bar.

Region scope is the server's: a run is read and committed by its uploader alone, and every step imports
with the uploader's regions (`RegionScope`), so rows of stations elsewhere are rejected with their reason.
Messages are kept as message ids and parameters (`Text`), so each reader sees them in their language.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.regions import RegionScope
from bot.services.roles import Access, NotAllowed
from bot.services.stations import ImportAudit, ImportReport, StationService
from domain.clock import Clock, utc_now
from domain.messages import Text
from domain.values import YizhanError
from storage.importers import (
    COLUMN_LABELS_ZH,
    COLUMN_LABELS_ZH_HANT,
    ImportFileError,
    ImportLimits,
    RowError,
    file_too_large,
    parse_station_file,
)
from storage.imports_repo import ImportRunRepository

__all__ = [
    "ImportExpired",
    "ImportNotFound",
    "ImportNotReady",
    "ImportRun",
    "ImportService",
    "RunStatus",
    "Upload",
    "column_label",
]

log = logging.getLogger(__name__)

#: Rejected rows and warnings a run keeps for its page (the counts are always whole).
MAX_SHOWN_ERRORS = 1000
MAX_SHOWN_WARNINGS = 200
#: How often a running step writes the rows it has read to its run.
PROGRESS_INTERVAL_S = 0.5
#: A step not finished this long after it started died with its process (a national file takes minutes).
STALE_AFTER = timedelta(hours=2)
#: File types the importer reads (storage/importers.py); anything else is refused before it is stored.
SUFFIXES = (".csv", ".txt", ".xlsx", ".geojson", ".json")


class RunStatus(enum.StrEnum):
    CHECKING = "checking"
    CHECKED = "checked"
    #: The file as a whole cannot be imported (too large, unreadable, no header...).
    REFUSED = "refused"
    COMMITTING = "committing"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


RUNNING = frozenset({RunStatus.CHECKING, RunStatus.COMMITTING})
#: What the history lists: files committed, being committed, or that failed while committing.
HISTORY = (RunStatus.COMMITTING, RunStatus.DONE, RunStatus.FAILED)


class ImportNotFound(YizhanError):
    """No such run, or not one this user may see (the same answer, so ids reveal nothing)."""


class ImportNotReady(YizhanError):
    """The run is not a checked file waiting for its commit (still checking, refused, or committed)."""

    def __init__(self, status: RunStatus) -> None:
        super().__init__(f"the import is {status.value}")
        self.status = status


class ImportExpired(YizhanError):
    """The checked file was kept for its time and is gone: upload it again."""


@dataclass(frozen=True, slots=True)
class ImportRun:
    id: int
    actor_id: int
    file_name: str
    file_bytes: int
    status: RunStatus
    lang: str
    total_rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    warned: int
    rows_done: int
    created_at: datetime
    committed_at: datetime | None
    finished_at: datetime | None
    errors: tuple[RowError, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Why the file as a whole was refused, or why the step failed.
    file_error: str | None = None
    regions: tuple[str, ...] = field(default=())

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def committable(self) -> bool:
        return self.status is RunStatus.CHECKED

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged


def column_label(column: str, locale: str) -> str:
    """A field's header as the union's template names it in `locale` (the English field name in `en`)."""
    if not column:
        return ""
    if locale == "zh_Hans":
        return COLUMN_LABELS_ZH.get(column, column)
    if locale == "zh_Hant":
        return COLUMN_LABELS_ZH_HANT.get(column, column)
    return column


# -- messages kept in the database ----------------------------------------------------------------------
def _dump(value: Any) -> Any:
    if isinstance(value, Text):
        return {"t": value.msgid, "p": {k: _dump(v) for k, v in value.params.items()}}
    if isinstance(value, tuple):
        return {"l": [_dump(v) for v in value]}
    return value


def _load(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return Text(value["t"], **{k: _load(v) for k, v in value.get("p", {}).items()})
    if isinstance(value, dict) and "l" in value:
        return tuple(_load(v) for v in value["l"])
    return value


def _dump_error(error: RowError) -> dict[str, Any]:
    problems = error.problems or (error.reason,)
    return {
        "row": error.row,
        "unit": error.unit,
        "problems": [_dump(p) for p in problems],
        "columns": list(error.columns),
    }


def _load_error(data: dict[str, Any]) -> RowError:
    return RowError.of(
        int(data["row"]),
        [_load(p) for p in data["problems"]],
        data.get("unit", "row"),
        data.get("columns", ()),
    )


def _details(report: ImportReport) -> dict[str, Any]:
    return {
        "errors": [_dump_error(e) for e in report.errors[:MAX_SHOWN_ERRORS]],
        "warnings": [_dump(w) for w in report.warnings[:MAX_SHOWN_WARNINGS]],
    }


def _counts(report: ImportReport) -> dict[str, Any]:
    return {
        "lang": report.lang,
        "total_rows": report.total_rows,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "warned": len(report.warnings),
    }


def _run(row: Any, progress: tuple[int, int] | None = None) -> ImportRun:
    details = row.details or {}
    file_error = details.get("file")
    return ImportRun(
        id=row.id,
        actor_id=row.actor_id,
        file_name=row.file_name,
        file_bytes=row.file_bytes,
        status=RunStatus(row.status),
        lang=row.lang,
        total_rows=row.total_rows if progress is None else max(progress[1], row.total_rows),
        inserted=row.inserted,
        updated=row.updated,
        unchanged=row.unchanged,
        rejected=row.rejected,
        warned=row.warned,
        rows_done=row.rows_done if progress is None else max(progress[0], row.rows_done),
        created_at=row.created_at,
        committed_at=row.committed_at,
        finished_at=row.finished_at,
        errors=tuple(_load_error(e) for e in details.get("errors", ())),
        warnings=tuple(_load(w) for w in details.get("warnings", ())),
        file_error=_load(file_error) if file_error is not None else None,
    )


# -- receiving a file ----------------------------------------------------------------------------------
class Upload:
    """A file being received: written to the import directory as it arrives, refused as soon as it grows
    past the import limit (a client announcing a small size and sending more is stopped there too)."""

    def __init__(self, path: Path, file_name: str, limits: ImportLimits) -> None:
        self.path = path
        self.file_name = file_name
        self.limits = limits
        self.size = 0
        self._sha = hashlib.sha256()
        self._file: Any = None

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limits.max_bytes:
            await self.discard()
            raise file_too_large(self.size, self.limits)
        self._sha.update(chunk)
        if self._file is None:
            self._file = await asyncio.to_thread(self.path.open, "wb")
        await asyncio.to_thread(self._file.write, chunk)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    async def close(self) -> None:
        if self._file is None:
            self._file = await asyncio.to_thread(self.path.open, "wb")  # an empty file is a file too
        await asyncio.to_thread(self._file.close)

    async def discard(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path.unlink)


def _safe_name(file_name: str) -> str:
    """The name as the clerk's computer gave it, without any directory, for the history."""
    name = file_name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(c for c in name if c.isprintable())[:255] or "upload"


class ImportService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stations: StationService,
        directory: Path,
        ttl: timedelta = timedelta(hours=1),
        clock: Clock = utc_now,
    ) -> None:
        self.sessions = sessions
        self.stations = stations
        self.directory = Path(directory)
        self.ttl = ttl
        self.clock = clock
        self._tasks: dict[int, asyncio.Task[None]] = {}
        #: (rows read, rows in the file) of the steps running in this process, set from the parsing thread.
        self._progress: dict[int, tuple[int, int]] = {}

    @property
    def limits(self) -> ImportLimits:
        return self.stations.import_limits

    def too_large(self, size: int) -> ImportFileError:
        """The refusal of a file of `size` bytes (a request that says so before it is read)."""
        return file_too_large(size, self.limits)

    # -- the steps --------------------------------------------------------------------------------------
    async def upload(self, file_name: str, access: Access) -> Upload:
        """Somewhere to receive a file; the name's type is checked first, so nothing else is stored."""
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        name = _safe_name(file_name)
        suffix = Path(name).suffix.lower()
        if suffix not in SUFFIXES:
            parse_station_file(Path(name))  # raises the importer's own error for the type: nothing is stored
        await asyncio.to_thread(self._sweep)
        token = secrets.token_hex(8)
        return Upload(self.directory / f"upload-{token}{suffix}", name, self.limits)

    def _sweep(self) -> None:
        """Make the directory, and remove files kept longer than `ttl` (a dry run never committed)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        oldest = time.time() - self.ttl.total_seconds()
        for entry in os.scandir(self.directory):
            try:
                if entry.is_file() and entry.stat().st_mtime < oldest:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass

    def _path(self, run_id: int, file_name: str) -> Path:
        return self.directory / f"run-{run_id}{Path(file_name).suffix.lower()}"

    async def check(self, upload: Upload, access: Access, actor_id: int) -> ImportRun:
        """Start the dry run of a received file; returns its run at once (status `checking`)."""
        if not access.is_staff:
            await upload.discard()
            raise NotAllowed(f"user {access.user_id} is not staff")
        await upload.close()
        async with self.sessions() as session, session.begin():
            row = await ImportRunRepository(session).add(
                actor_id=actor_id,
                file_name=upload.file_name,
                file_bytes=upload.size,
                file_sha256=upload.sha256,
                status=RunStatus.CHECKING.value,
                details={},
                created_at=self.clock(),
            )
            run = _run(row)
        path = self._path(run.id, run.file_name)
        await asyncio.to_thread(upload.path.replace, path)
        log.info(
            "import %d: %s (%d bytes) uploaded by %d for a dry run",
            run.id,
            run.file_name,
            run.file_bytes,
            actor_id,
        )
        self._start(run.id, self._checking(run.id, path, RegionScope(access.regions)))
        return run

    async def commit(self, run_id: int, access: Access, actor_id: int) -> ImportRun:
        """Import the checked file of a run, once; returns the run at once (status `committing`)."""
        run = await self.run(run_id, access, actor_id)
        if run.actor_id != actor_id:
            raise ImportNotFound(str(run_id))  # only its uploader commits a file (admins included)
        if run.status not in (RunStatus.CHECKED, RunStatus.EXPIRED):
            raise ImportNotReady(run.status)
        path = self._path(run.id, run.file_name)
        now = self.clock()
        fresh = run.status is RunStatus.CHECKED and await asyncio.to_thread(path.exists)
        if fresh:
            fresh = await asyncio.to_thread(_sha256_of, path) == await self._sha(run_id)
        async with self.sessions() as session, session.begin():
            repo = ImportRunRepository(session)
            if fresh:
                claimed = await repo.claim(
                    run_id, RunStatus.CHECKED, RunStatus.COMMITTING, committed_at=now, rows_done=0
                )
            else:
                claimed = await repo.claim(run_id, RunStatus.CHECKED, RunStatus.EXPIRED, finished_at=now)
        if not fresh:
            await asyncio.to_thread(_unlink, path)
            raise ImportExpired(str(run_id))
        if not claimed:
            raise ImportNotReady((await self.run(run_id, access, actor_id)).status)
        log.info("import %d: %s committed by %d", run.id, run.file_name, actor_id)
        self._start(
            run_id, self._committing(run_id, path, RegionScope(access.regions), actor_id, run.file_name)
        )
        return await self.run(run_id, access, actor_id)

    async def _sha(self, run_id: int) -> str:
        async with self.sessions() as session:
            row = await ImportRunRepository(session).get(run_id)
            return row.file_sha256 if row is not None else ""

    # -- reading ----------------------------------------------------------------------------------------
    async def run(self, run_id: int, access: Access, actor_id: int) -> ImportRun:
        """A run as its uploader (or an admin) sees it, with the rows read so far when it runs here."""
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        async with self.sessions() as session:
            repo = ImportRunRepository(session)
            row = await repo.get(run_id)
            if row is None or (row.actor_id != actor_id and not access.is_admin):
                raise ImportNotFound(str(run_id))
            regions = await repo.regions_of(run_id)
            run = _run(row, self._progress.get(run_id))
        return dataclasses.replace(run, regions=tuple(regions), status=self._status_now(run))

    def _status_now(self, run: ImportRun) -> RunStatus:
        """What a run's status means now: a checked file past its time is expired (its commit would say
        so); a step that no process has moved for `STALE_AFTER` died with its process."""
        now = self.clock()
        if run.status is RunStatus.CHECKED and now - run.created_at > self.ttl:
            return RunStatus.EXPIRED
        started = run.committed_at or run.created_at
        if run.running and run.id not in self._tasks and now - started > STALE_AFTER:
            return RunStatus.FAILED
        return run.status

    async def recent_imports(
        self, access: Access, limit: int = 10, actor_id: int | None = None
    ) -> list[ImportRun]:
        """The newest committed imports holding stations of the user's regions (all for an admin), and the
        user's own (`actor_id`); without their rejected rows."""
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        limit = max(1, min(limit, 200))
        async with self.sessions() as session:
            rows = await ImportRunRepository(session).recent(
                [s.value for s in HISTORY], access.regions, actor_id, limit
            )
            return [_summary(row) for row in rows]

    async def wait(self, run_id: int) -> None:
        """Until this process's step of a run is over (tests, a command line)."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        """Stop the steps still running (the process ends): their runs are marked failed."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the background steps ----------------------------------------------------------------------------
    def _start(self, run_id: int, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"import-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run_id, None))

    def _progress_of(self, run_id: int) -> Any:
        self._progress[run_id] = (0, 0)

        def progress(done: int, total: int) -> None:  # called from the parsing thread
            self._progress[run_id] = (done, total)

        return progress

    async def _write_progress(self, run_id: int) -> None:
        written = (-1, -1)
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            done, total = self._progress.get(run_id, (0, 0))
            if (done, total) != written:
                async with self.sessions() as session, session.begin():
                    await ImportRunRepository(session).set(run_id, rows_done=done, total_rows=total)
                written = (done, total)

    async def _step(
        self, run_id: int, path: Path, scope: RegionScope, dry_run: bool, audit: ImportAudit | None = None
    ) -> ImportReport | None:
        """Run the importer over the file, reporting progress; None when it refused the file as a whole."""
        progress = self._progress_of(run_id)
        writer = asyncio.get_running_loop().create_task(self._write_progress(run_id))
        try:
            return await self.stations.import_file(
                path, dry_run=dry_run, progress=progress, scope=scope, audit=audit
            )
        except ImportFileError as exc:
            async with self.sessions() as session, session.begin():
                await ImportRunRepository(session).set(
                    run_id,
                    status=RunStatus.REFUSED.value if dry_run else RunStatus.FAILED.value,
                    details={"file": _dump(exc.reason)},
                    finished_at=self.clock(),
                )
            log.info("import %d: file refused: %s", run_id, exc.reason)
            return None
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _checking(self, run_id: int, path: Path, scope: RegionScope) -> None:
        try:
            report = await self._step(run_id, path, scope, dry_run=True)
            if report is None:
                await asyncio.to_thread(_unlink, path)
                return
            async with self.sessions() as session, session.begin():
                repo = ImportRunRepository(session)
                await repo.set(
                    run_id,
                    status=RunStatus.CHECKED.value,
                    details=_details(report),
                    rows_done=report.total_rows,
                    **_counts(report),
                )
                await repo.set_regions(run_id, report.regions)
        except BaseException as exc:
            await self._failed(run_id, exc, "dry run")
            await asyncio.to_thread(_unlink, path)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._progress.pop(run_id, None)

    async def _committing(
        self, run_id: int, path: Path, scope: RegionScope, actor_id: int, path_name: str
    ) -> None:
        try:
            audit = ImportAudit(actor_id, f"import {run_id}: {path_name}", self.clock())
            report = await self._step(run_id, path, scope, dry_run=False, audit=audit)
            if report is not None:
                async with self.sessions() as session, session.begin():
                    repo = ImportRunRepository(session)
                    await repo.set(
                        run_id,
                        status=RunStatus.DONE.value,
                        details=_details(report),
                        rows_done=report.total_rows,
                        finished_at=self.clock(),
                        **_counts(report),
                    )
                    await repo.set_regions(run_id, report.regions)
                log.info(
                    "import %d committed by %d: %d new, %d updated, %d unchanged, %d rejected",
                    run_id,
                    actor_id,
                    report.inserted,
                    report.updated,
                    report.unchanged,
                    report.rejected,
                )
        except BaseException as exc:
            await self._failed(run_id, exc, "commit")
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._progress.pop(run_id, None)
            await asyncio.to_thread(_unlink, path)

    async def _failed(self, run_id: int, exc: BaseException, step: str) -> None:
        if isinstance(exc, asyncio.CancelledError):
            log.warning("import %d: %s stopped with the process", run_id, step)
        else:
            log.error("import %d: %s failed", run_id, step, exc_info=exc)
        try:
            async with self.sessions() as session, session.begin():
                await ImportRunRepository(session).set(
                    run_id, status=RunStatus.FAILED.value, finished_at=self.clock()
                )
        except Exception:
            log.exception("import %d: could not record the failure", run_id)


def _summary(row: Any) -> ImportRun:
    return dataclasses.replace(_run(row), errors=(), warnings=())


def _sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            sha.update(chunk)
    return sha.hexdigest()


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
