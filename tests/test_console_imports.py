"""The console's station imports as a service, against real SQLite and PostgreSQL: dry run, commit of the
file checked, region scope, expiry, limits, history; and the moderation context beside a case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Core, open_core
from bot.config import Settings
from bot.i18n import translator
from bot.services.imports import ImportExpired, ImportNotFound, ImportNotReady, ImportService, RunStatus
from bot.services.reports import AlreadyDecided, Decision
from bot.services.roles import Access, NotAllowed
from domain.statuses import CaseStatus
from domain.values import GeoPoint, StationNotFound, StationRecord
from storage.importers import ImportFileError, ImportLimits
from storage.models import AuditRow, ImportRunRow

STAFF_GZ, STAFF_SZ, ADMIN, RIDER = 21, 22, 23, 24
#: Console actors (audit identities), distinct from Telegram ids.
CLERK_GZ, CLERK_SZ, CLERK_ADMIN = 7001, 7002, 7003
zh = translator("zh_Hans").gettext
en = translator("en").gettext

HEADER = "站点编号,站点名称,纬度,经度,开放时间,行政区划代码\n"
GOOD = "GZ-A,天河驿站,23.1291,113.3244,周一至周五 9:00-17:00,\n"
BAD = "GZ-B,越秀驿站,二十三,113.2644,全天,\n"  # latitude is no number
FIXED = "GZ-B,越秀驿站,23.1291,113.2644,全天,\n"
SHENZHEN = "SZ-A,福田驿站,22.5431,114.0579,24/7,\n"
WRONG_REGION = "GZ-C,海珠驿站,23.0964,113.3172,24/7,440305\n"  # the sheet says Shenzhen


@pytest.fixture
async def core(database_url: str, tmp_path: Path) -> AsyncIterator[Core]:
    settings = Settings(  # type: ignore[call-arg]
        database_url=database_url, console_import_dir=tmp_path / "imports", _env_file=None
    )
    async with open_core(settings) as core:
        await core.roles.grant(STAFF_GZ, "staff", "4401")
        await core.roles.grant(STAFF_SZ, "staff", "4403")
        await core.roles.grant(ADMIN, "admin")
        yield core


async def dry_run(core: Core, user: int, actor: int, content: str, name: str = "站点.csv") -> int:
    access = await core.roles.access(user)
    upload = await core.imports.upload(name, access)
    data = content.encode()
    for start in range(0, len(data), 7):  # as a request body arrives: in pieces
        await upload.write(data[start : start + 7])
    run = await core.imports.check(upload, access, actor)
    assert run.status is RunStatus.CHECKING
    await core.imports.wait(run.id)
    return run.id


async def test_dry_run_shows_each_rejected_row_with_its_column_in_the_sheets_language(core: Core) -> None:
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD + BAD + SHENZHEN + WRONG_REGION)
    run = await core.imports.run(run_id, await core.roles.access(STAFF_GZ), CLERK_GZ)
    assert run.status is RunStatus.CHECKED and run.committable
    assert (run.total_rows, run.inserted, run.updated, run.unchanged, run.rejected) == (4, 2, 0, 0, 2)
    assert run.lang == "zh_Hans"
    bad, shenzhen = run.errors
    assert (bad.row, bad.columns) == (3, ("lat",))
    assert bad.translated(zh).startswith("第 3 行：")
    assert "二十三" in bad.translated(zh)
    assert shenzhen.row == 4 and shenzhen.columns == ("lat",)
    assert "440304" in shenzhen.translated(en) and "outside your regions (4401)" in shenzhen.translated(en)
    assert shenzhen.translated(zh) != shenzhen.translated(en)
    (warning,) = run.warnings
    assert "440305" in warning and _tr(warning, zh).startswith("第 5 行")
    assert run.regions and all(r.startswith("4401") for r in run.regions)
    assert await core.stations.count() == 0  # a dry run writes no station


def _tr(text: str, gettext: object) -> str:
    from domain.messages import translated

    return translated(text, gettext)  # type: ignore[arg-type]


async def test_commit_imports_exactly_the_checked_file_once_and_lists_it_in_the_region(core: Core) -> None:
    gz = await core.roles.access(STAFF_GZ)
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD + FIXED + SHENZHEN)
    first, second = await asyncio.gather(
        core.imports.commit(run_id, gz, CLERK_GZ),
        core.imports.commit(run_id, gz, CLERK_GZ),
        return_exceptions=True,
    )
    outcomes = sorted(type(r).__name__ for r in (first, second))
    assert outcomes == ["ImportNotReady", "ImportRun"]
    await core.imports.wait(run_id)
    run = await core.imports.run(run_id, gz, CLERK_GZ)
    assert run.status is RunStatus.DONE
    assert (run.inserted, run.rejected, run.rows_done) == (2, 1, 3)
    assert run.finished_at is not None and run.committed_at is not None
    assert {s.code for s in [await core.stations.get("GZ-A"), await core.stations.get("GZ-B")]} == {
        "GZ-A",
        "GZ-B",
    }
    with pytest.raises(StationNotFound):
        await core.stations.get("SZ-A")
    # Riders find the new stations at once: the index is patched.
    hits = core.search.find_nearest_open(GeoPoint(23.1291, 113.3244), 1, (), datetime.now(UTC))
    assert hits and hits[0].code in ("GZ-A", "GZ-B")
    with pytest.raises(ImportNotReady):
        await core.imports.commit(run_id, gz, CLERK_GZ)
    async with core.sessions() as session:
        audit = (await session.scalars(select(AuditRow).order_by(AuditRow.id))).all()
    assert [(a.actor_id, a.action, a.reason) for a in audit] == [
        (CLERK_GZ, "import", f"import {run_id}: 站点.csv")
    ] * 2
    assert audit[0].after["name"] in ("天河驿站", "越秀驿站") and audit[0].before == {}
    history = await core.imports.recent_imports(gz, limit=5)
    assert [(r.id, r.actor_id, r.file_name, r.inserted) for r in history] == [
        (run_id, CLERK_GZ, "站点.csv", 2)
    ]
    assert await core.imports.recent_imports(await core.roles.access(STAFF_SZ), limit=5) == []
    assert [r.id for r in await core.imports.recent_imports(await core.roles.access(ADMIN), 5)] == [run_id]
    with pytest.raises(NotAllowed):
        await core.imports.recent_imports(await core.roles.access(RIDER), 5)


async def test_a_bad_row_fixed_and_uploaded_again_imports_every_row(core: Core) -> None:
    gz = await core.roles.access(STAFF_GZ)
    first = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD + BAD)
    assert (await core.imports.run(first, gz, CLERK_GZ)).rejected == 1
    second = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD + FIXED)
    checked = await core.imports.run(second, gz, CLERK_GZ)
    assert (checked.rejected, checked.inserted) == (0, 2)
    await core.imports.commit(second, gz, CLERK_GZ)
    await core.imports.wait(second)
    assert (await core.imports.run(second, gz, CLERK_GZ)).inserted == 2
    assert await core.stations.count() == 2
    # Only the committed file is history; the first dry run is not.
    assert [r.id for r in await core.imports.recent_imports(gz, 10)] == [second]


async def test_another_clerk_can_neither_see_nor_commit_a_run(core: Core) -> None:
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD)
    sz = await core.roles.access(STAFF_SZ)
    with pytest.raises(ImportNotFound):
        await core.imports.run(run_id, sz, CLERK_SZ)
    with pytest.raises(ImportNotFound):
        await core.imports.commit(run_id, sz, CLERK_SZ)
    with pytest.raises(ImportNotFound):  # an admin reads it, but only its uploader commits it
        await core.imports.commit(run_id, await core.roles.access(ADMIN), CLERK_ADMIN)
    assert (await core.imports.run(run_id, await core.roles.access(ADMIN), CLERK_ADMIN)).id == run_id
    with pytest.raises(NotAllowed):
        await core.imports.upload("a.csv", await core.roles.access(RIDER))
    assert await core.stations.count() == 0


async def test_a_station_of_another_region_is_not_changed_through_its_code(core: Core) -> None:
    await core.stations.save_records(
        [StationRecord(code="GZ-A", name="福田", lat=22.5431, lon=114.0579, region="440304")]
    )
    gz = await core.roles.access(STAFF_GZ)
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD)
    run = await core.imports.run(run_id, gz, CLERK_GZ)
    (error,) = run.errors
    assert error.columns == ("code",) and "440304" in error.translated(en)
    await core.imports.commit(run_id, gz, CLERK_GZ)
    await core.imports.wait(run_id)
    assert (await core.stations.get("GZ-A")).region == "440304"


async def test_a_checked_file_expires(core: Core) -> None:
    gz = await core.roles.access(STAFF_GZ)
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD)
    later = datetime.now(UTC) + timedelta(minutes=61)
    core.imports.clock = lambda: later
    assert (await core.imports.run(run_id, gz, CLERK_GZ)).status is RunStatus.EXPIRED  # no commit button
    with pytest.raises(ImportExpired):
        await core.imports.commit(run_id, gz, CLERK_GZ)
    assert (await core.imports.run(run_id, gz, CLERK_GZ)).status is RunStatus.EXPIRED
    assert await core.stations.count() == 0


async def test_a_file_changed_on_the_server_after_its_dry_run_is_not_committed(core: Core) -> None:
    gz = await core.roles.access(STAFF_GZ)
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD)
    (core.imports.directory / f"run-{run_id}.csv").write_text(HEADER + SHENZHEN)
    with pytest.raises(ImportExpired):
        await core.imports.commit(run_id, gz, CLERK_GZ)
    assert await core.stations.count() == 0


async def test_the_size_limit_stops_an_upload_as_it_arrives(core: Core, tmp_path: Path) -> None:
    service = ImportService(core.sessions, core.stations, tmp_path / "small")
    core.stations.import_limits = ImportLimits(max_bytes=100)
    gz = await core.roles.access(STAFF_GZ)
    upload = await service.upload("big.csv", gz)
    await upload.write(b"x" * 60)
    with pytest.raises(ImportFileError) as refused:
        await upload.write(b"x" * 60)
    assert "IMPORT_MAX_BYTES" in str(refused.value)
    assert list((tmp_path / "small").iterdir()) == []


async def test_an_unknown_file_type_is_refused_before_anything_is_stored(core: Core) -> None:
    with pytest.raises(ImportFileError) as refused:
        await core.imports.upload("stations.xls", await core.roles.access(STAFF_GZ))
    assert ".xlsx" in str(refused.value)


async def test_a_file_refused_as_a_whole_says_why(core: Core) -> None:
    gz = await core.roles.access(STAFF_GZ)
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, "foo,bar\n1,2\n")
    run = await core.imports.run(run_id, gz, CLERK_GZ)
    assert run.status is RunStatus.REFUSED and not run.committable
    assert run.file_error is not None and "missing required column" in run.file_error
    assert _tr(run.file_error, zh) != str(run.file_error)


async def test_case_context_lists_the_stations_earlier_cases(core: Core) -> None:
    await core.stations.save_records(
        [
            StationRecord(
                code="GZ1", name="广州驿站", lat=23.13, lon=113.26, region="440104", opening_hours="24/7"
            )
        ]
    )
    await core.reload_index()
    station = await core.stations.get("GZ1")
    at = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)
    first = await core.reports.submit(RIDER, station.id, "wrong_hours", at, detail="Mo-Fr 08:00-18:00")
    gz = await core.roles.access(STAFF_GZ)
    await core.reports.decide(first.case_id, Decision.REJECT, gz, at)
    second = await core.reports.submit(RIDER, station.id, "other", at + timedelta(hours=2), text="门锁了")
    context = await core.reports.context(second.case_id, gz, at + timedelta(hours=2))
    assert context.case.id == second.case_id
    assert [(c.id, c.status) for c in context.earlier] == [(first.case_id, CaseStatus.REJECTED)]
    with pytest.raises(NotAllowed):
        await core.reports.context(second.case_id, await core.roles.access(STAFF_SZ), at)
    await core.reports.decide(second.case_id, Decision.APPROVE, gz, at, tell_later=True)
    # The bot tells the reporter of the console's decision; of a decision made in the bot, nothing waits.
    (pending,) = await core.reports.outcomes_to_tell()
    assert (pending.case.id, pending.decision, pending.reporters) == (
        second.case_id,
        Decision.APPROVE,
        (RIDER,),
    )
    assert await core.reports.outcomes_to_tell() == []
    with pytest.raises(AlreadyDecided):
        await core.reports.decide(second.case_id, Decision.REJECT, gz, at)


def test_access_is_what_the_import_scope_reads() -> None:
    from bot.services.regions import RegionScope
    from bot.services.roles import Role

    staff = Access(1, ((Role.STAFF, "4401"),))
    scope = RegionScope(staff.regions)
    assert scope.allows("440106") and not scope.allows("440304") and not scope.allows("")
    assert RegionScope(("",)).allows("") and RegionScope(("",)).allows("440304")


async def test_a_large_file_reports_the_rows_read_while_it_is_checked(core: Core) -> None:
    gz = await core.roles.access(STAFF_GZ)
    rows = "".join(
        f"GZ-{i},驿站{i},{23.05 + (i % 100) * 0.001},{113.25 + (i // 100) * 0.0005},24/7,\n"
        for i in range(20_000)
    )
    run_id = await start_dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + rows)
    seen: list[tuple[str, int, int]] = []
    while True:
        run = await core.imports.run(run_id, gz, CLERK_GZ)
        seen.append((run.status.value, run.rows_done, run.total_rows))
        if not run.running:
            break
        await asyncio.sleep(0.01)
    assert run.status is RunStatus.CHECKED and run.inserted == 20_000
    partial = [done for status, done, total in seen if status == "checking" and 0 < done < total == 20_000]
    assert partial, seen[:: max(1, len(seen) // 20)]
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)  # it only moves forward


async def start_dry_run(core: Core, user: int, actor: int, content: str) -> int:
    access = await core.roles.access(user)
    upload = await core.imports.upload("big.csv", access)
    await upload.write(content.encode())
    return (await core.imports.check(upload, access, actor)).id


async def test_a_step_left_running_by_a_dead_process_reads_as_failed(core: Core) -> None:
    gz = await core.roles.access(STAFF_GZ)
    run_id = await dry_run(core, STAFF_GZ, CLERK_GZ, HEADER + GOOD)
    async with core.sessions() as session, session.begin():
        row = await session.get(ImportRunRow, run_id)
        assert row is not None
        row.status = RunStatus.COMMITTING.value  # as a process that died mid-commit left it
        row.committed_at = datetime.now(UTC)
    assert (await core.imports.run(run_id, gz, CLERK_GZ)).status is RunStatus.COMMITTING  # it may still run
    later = datetime.now(UTC) + timedelta(hours=3)
    core.imports.clock = lambda: later
    assert (await core.imports.run(run_id, gz, CLERK_GZ)).status is RunStatus.FAILED
