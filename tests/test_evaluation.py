"""Station evaluation: riders' uses of a station counted from the bot, the H5 page's beacon and the API,
kept through a clean stop, added up across processes, and a region's report ranking the stations that
serve least or fail most first; on SQLite and PostgreSQL, through real aiohttp servers.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from botkit import HOME, NOON, STATIONS, Clock, button_data, north
from sqlalchemy import inspect, select, text

from bot.app import Core, open_core
from bot.config import Settings
from bot.services.evaluation import Concern, UsageCounter, UsageKind
from bot.services.roles import Access, NotAllowed, Role
from bot.telegram import build_bot, build_dispatcher
from bot.web import build_web_app
from domain.statuses import CaseStatus
from domain.values import StationRecord
from localapi import LocalBotAPI
from storage.models import CaseRow, RatingRow, ReportRow, StationRow, StationUsageRow

USAGE = "/api/v1/usage"
#: NOON is 12:00 in China on this day: the day the counts are kept under.
CHINA_DAY = date(2025, 6, 3)

GZ = (23.13, 113.26)
SZ = (22.54, 114.05)


def record(code: str, region: str, lat: float, lon: float, **kw: Any) -> StationRecord:
    return StationRecord(
        code=code, name=f"驿站{code}", lat=lat, lon=lon, region=region, opening_hours="24/7", **kw
    )


REGION_STATIONS = [
    record("GZA", "440106", GZ[0], GZ[1], phone="020-1"),
    record("GZB", "440106", GZ[0] + 0.01, GZ[1]),
    record("GZC", "440104", GZ[0], GZ[1] + 0.01),
    record("GZD", "440104", GZ[0] + 0.02, GZ[1]),
    record("SZA", "440304", SZ[0], SZ[1]),
]


async def usage_rows(core: Core) -> dict[tuple[str, date], tuple[int, int, int]]:
    async with core.sessions() as session:
        rows = await session.execute(
            select(
                StationRow.code,
                StationUsageRow.day,
                StationUsageRow.views,
                StationUsageRow.navigations,
                StationUsageRow.calls,
            ).join(StationRow, StationRow.id == StationUsageRow.station_id)
        )
        return {(code, day): (v, n, c) for code, day, v, n, c in rows.all()}


async def station_id(core: Core, code: str) -> int:
    return (await core.stations.get(code)).id


# -- the bot ---------------------------------------------------------------------------------------------


@dataclass
class BotAndWeb:
    api: LocalBotAPI
    core: Core
    web: str
    user_id: int = 701


@asynccontextmanager
async def bot_and_web(tmp_path: Path) -> AsyncIterator[BotAndWeb]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        clock = Clock(NOON)
        async with TestServer(build_web_app(core, clock=clock), host="127.0.0.1") as server:
            # The bot's map buttons point at this web app.
            core.settings = core.settings.model_copy(
                update={"public_url": str(server.make_url("")).rstrip("/")}
            )
            api = LocalBotAPI()
            bot = build_bot(api.token, await api.start())
            dp = build_dispatcher(core, clock=clock, throttle_rate=50, throttle_burst=50)
            task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
            await api.wait_for(lambda: api.calls_to("getUpdates"))
            try:
                yield BotAndWeb(api, core, str(server.make_url("")).rstrip("/"))
            finally:
                await dp.stop_polling()
                await asyncio.wait_for(task, 10)
                await bot.session.close()
                await api.stop()


async def test_bot_card_map_buttons_and_call_button_are_counted(tmp_path: Path) -> None:
    async with bot_and_web(tmp_path) as env:
        api, user = env.api, env.user_id
        mark = api.mark()
        await api.send_location(user, HOME[0], HOME[1], language_code="en")
        results = await api.wait_for(
            lambda: next((m for m in api.changes_since(user, mark)[0] if button_data(m, "st:")), None)
        )
        # The second result is GZ0002 (500 m north); open its card twice.
        data = button_data(results, "st:")[1]
        for _ in range(2):
            mark = api.mark()
            await api.press(user, results.message_id, data, language_code="en")
            await api.wait_for(lambda mark=mark: any(m.venue for m in api.changes_since(user, mark)[0]))
        card = next(m for m in reversed(api.bot_messages(user)) if "GZ0002" in m.text)
        urls = [b["url"] for b in card.buttons if "url" in b]
        assert urls == [f"{env.web}/api/v1/go/GZ0002/amap", f"{env.web}/api/v1/go/GZ0002/baidu"]
        async with ClientSession() as http:
            for url in urls:
                async with http.get(url, allow_redirects=False) as answer:
                    assert answer.status == 302
                    assert answer.headers["Location"].startswith(
                        ("https://uri.amap.com/marker?", "https://api.map.baidu.com/marker?")
                    )
                    assert "wgs84" in answer.headers["Location"]
            async with http.get(f"{env.web}/api/v1/go/NOPE/amap", allow_redirects=False) as answer:
                assert answer.status == 404
            async with http.get(f"{env.web}/api/v1/go/GZ0002/google", allow_redirects=False) as answer:
                assert answer.status == 404
        call = button_data(card, "call:")
        assert len(call) == 1
        mark = api.mark()
        await api.press(user, card.message_id, call[0], language_code="en")
        number = await api.wait_for_change(user, mark)
        assert "020-88880002" in number.text and "越秀建设银行爱心驿站" in number.text

        # A forged call button for a station that does not exist counts nothing and is answered.
        query = await api.press(user, card.message_id, "call:999999", language_code="en", forged=True)
        answer = await api.wait_for(lambda: api.callback_answers.get(query))
        assert answer.get("show_alert") and "no longer listed" in answer.get("text", "")

        await env.core.evaluation.counter.flush()
        rows = await usage_rows(env.core)
        assert rows == {("GZ0002", CHINA_DAY): (2, 2, 1)}


# -- the H5 page's beacon ---------------------------------------------------------------------------------


@asynccontextmanager
async def web(settings: Settings, **overrides: Any) -> AsyncIterator[tuple[Core, ClientSession, str]]:
    settings = settings.model_copy(update={"api_rate_limit": 0, **overrides})
    async with open_core(settings) as core:
        await core.stations.save_records(REGION_STATIONS)
        await core.reload_index()
        async with (
            TestServer(build_web_app(core, clock=lambda: NOON), host="127.0.0.1") as server,
            ClientSession() as http,
        ):
            yield core, http, str(server.make_url("")).rstrip("/")


async def beacon(http: ClientSession, base: str, events: Any, **kw: Any) -> tuple[int, Any]:
    body = events if isinstance(events, (bytes, str)) else json.dumps({"events": events})
    headers = {"Content-Type": "text/plain;charset=UTF-8", **kw.pop("headers", {})}
    async with http.post(base + USAGE, data=body, headers=headers, **kw) as answer:
        raw = await answer.read()
        return answer.status, json.loads(raw) if raw else None


async def test_h5_beacons_count_each_station_and_kind_once_per_beacon(settings: Settings) -> None:
    async with web(settings) as (core, http, base):
        status, body = await beacon(
            http,
            base,
            [
                {"station": "GZA", "kind": "view"},
                {"station": "GZA", "kind": "view"},  # the same card twice in one beacon: once
                {"station": "GZB", "kind": "view"},
                {"station": "GZA", "kind": "navigate"},
                {"station": "GZA", "kind": "call"},
                {"station": "NOT-A-STATION", "kind": "view"},  # an old card: ignored
            ],
        )
        assert (status, body) == (202, {"counted": 4})
        status, body = await beacon(http, base, [{"station": "GZA", "kind": "view"}])
        assert (status, body) == (202, {"counted": 1})
        await core.evaluation.counter.flush()
        assert await usage_rows(core) == {("GZA", CHINA_DAY): (2, 1, 1), ("GZB", CHINA_DAY): (1, 0, 0)}


def test_a_use_is_counted_on_the_day_of_the_stations_own_timezone() -> None:
    counter = UsageCounter(None, "Asia/Shanghai")  # type: ignore[arg-type]  # never flushed here
    late = datetime(
        2026, 12, 5, 17, 30, tzinfo=UTC
    )  # 01:30 on the 6th in Beijing, 23:30 on the 5th in Ürümqi
    counter.record(1, UsageKind.VIEW, late)
    counter.record(2, UsageKind.VIEW, late, "Asia/Urumqi")
    counter.record(1, UsageKind.CALL, late + timedelta(minutes=1))  # the same quarter hour, the default zone
    counter.record(3, UsageKind.VIEW, late, "Not/A_Zone")  # unknown: DEFAULT_TZ, with a warning
    assert counter.pending == {
        (1, date(2026, 12, 6)): [1, 0, 1],
        (2, date(2026, 12, 5)): [1, 0, 0],
        (3, date(2026, 12, 6)): [1, 0, 0],
    }


async def test_beacons_count_on_the_stations_own_day_from_memory_or_the_database(settings: Settings) -> None:
    async with web(settings) as (core, _http, _base):
        await core.stations.save_records([record("XJA", "650102", 43.8, 87.6, timezone="Asia/Urumqi")])
        # Past midnight in Beijing, still the evening before in Ürümqi.
        late = datetime.combine(CHINA_DAY, time(1, 30), ZoneInfo("Asia/Shanghai"))
        core.stations.cache.clear()
        assert (
            await core.evaluation.record_codes([("XJA", UsageKind.VIEW), ("GZA", UsageKind.VIEW)], late) == 2
        )
        await core.stations.get_cached("XJA")  # now from memory, timezone and all
        assert await core.evaluation.record_codes([("XJA", UsageKind.CALL)], late) == 1
        await core.evaluation.counter.flush()
        assert await usage_rows(core) == {
            ("XJA", CHINA_DAY - timedelta(days=1)): (1, 0, 1),
            ("GZA", CHINA_DAY): (1, 0, 0),
        }


@pytest.mark.parametrize(
    ("body", "status", "parameter"),
    [
        (b"not json", 400, None),
        (b"[]", 400, "events"),
        (json.dumps({"events": "GZA"}), 400, "events"),
        (json.dumps({"events": [{"station": "GZA", "kind": "like"}]}), 400, "kind"),
        (json.dumps({"events": [{"station": "", "kind": "view"}]}), 400, "station"),
        (json.dumps({"events": [{"station": "X" * 65, "kind": "view"}]}), 400, "station"),
        (json.dumps({"events": [{"station": 7, "kind": "view"}]}), 400, "station"),
        (json.dumps({"events": [["GZA", "view"]]}), 400, "events"),
        (json.dumps({"events": [{"station": "GZA", "kind": "view"}] * 21}), 400, "events"),
        (json.dumps({"events": [{"station": "GZA" * 300, "kind": "view"}] * 20}), 413, None),
    ],
)
async def test_a_hostile_beacon_is_refused_and_counts_nothing(
    sqlite_settings: Settings, body: Any, status: int, parameter: str | None
) -> None:
    async with web(sqlite_settings) as (core, http, base):
        answer_status, answer = await beacon(http, base, body)
        assert answer_status == status
        assert "error" in answer
        if parameter is not None:
            assert answer["error"]["parameter"] == parameter
        await core.evaluation.counter.flush()
        assert await usage_rows(core) == {}


async def test_the_per_client_rate_limit_bounds_what_one_client_counts(sqlite_settings: Settings) -> None:
    async with web(sqlite_settings, api_rate_limit=1.0, api_rate_burst=3) as (core, http, base):
        statuses = [(await beacon(http, base, [{"station": "GZA", "kind": "view"}]))[0] for _ in range(6)]
        assert statuses[:3] == [202, 202, 202] and set(statuses[3:]) == {429}
        await core.evaluation.counter.flush()
        assert await usage_rows(core) == {("GZA", CHINA_DAY): (3, 0, 0)}


# -- durability and replicas ------------------------------------------------------------------------------


async def test_counts_held_in_memory_are_written_on_a_clean_stop(settings: Settings) -> None:
    async with open_core(settings.model_copy(update={"evaluation_flush_s": 3600.0})) as core:
        await core.stations.save_records(REGION_STATIONS)
        gza = await station_id(core, "GZA")
        for _ in range(7):
            core.evaluation.record(gza, UsageKind.VIEW, NOON)
        core.evaluation.record(gza, UsageKind.CALL, NOON + timedelta(days=1))
        assert core.evaluation.counter.pending  # not written yet: the flush interval is an hour
    async with open_core(settings) as core:
        assert await usage_rows(core) == {
            ("GZA", CHINA_DAY): (7, 0, 0),
            ("GZA", CHINA_DAY + timedelta(days=1)): (0, 0, 1),
        }


async def test_the_background_flush_writes_within_its_interval(sqlite_settings: Settings) -> None:
    async with open_core(sqlite_settings.model_copy(update={"evaluation_flush_s": 0.2})) as core:
        await core.stations.save_records(REGION_STATIONS)
        core.evaluation.record(await station_id(core, "GZB"), UsageKind.NAVIGATE, NOON)
        for _ in range(50):
            await asyncio.sleep(0.05)
            if not core.evaluation.counter.pending:
                break
        assert await usage_rows(core) == {("GZB", CHINA_DAY): (0, 1, 0)}


async def test_a_failed_flush_keeps_the_counts_for_the_next(sqlite_settings: Settings) -> None:
    async with open_core(sqlite_settings.model_copy(update={"evaluation_flush_s": 3600.0})) as core:
        await core.stations.save_records(REGION_STATIONS)
        gza = await station_id(core, "GZA")
        core.evaluation.record(gza, UsageKind.VIEW, NOON)
        async with core.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE station_usage RENAME TO station_usage_away"))
        assert await core.evaluation.counter.flush() == 0
        core.evaluation.record(gza, UsageKind.VIEW, NOON)
        async with core.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE station_usage_away RENAME TO station_usage"))
        assert await core.evaluation.counter.flush() == 1
        assert await usage_rows(core) == {("GZA", CHINA_DAY): (2, 0, 0)}


async def test_two_processes_add_up_their_counts(postgres_url: str) -> None:
    from conftest import empty_postgres

    await empty_postgres(postgres_url)
    settings = Settings(database_url=postgres_url, _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as first:
        await first.stations.save_records(REGION_STATIONS)
        gza = await station_id(first, "GZA")
        async with open_core(settings) as second:
            for _ in range(3):
                first.evaluation.record(gza, UsageKind.VIEW, NOON)
            for _ in range(4):
                second.evaluation.record(gza, UsageKind.VIEW, NOON)
            second.evaluation.record(gza, UsageKind.NAVIGATE, NOON)
            await asyncio.gather(first.evaluation.counter.flush(), second.evaluation.counter.flush())
            assert await usage_rows(second) == {("GZA", CHINA_DAY): (7, 1, 0)}


# -- the region's report ----------------------------------------------------------------------------------


async def seed_history(core: Core) -> None:
    """GZA: used, well rated, verified lately. GZB: a confirmed closure and poor ratings. GZC: never used,
    never verified. GZD: used a little, a closure report rejected. SZA (Shenzhen): unused."""
    ids = {s.code: await station_id(core, s.code) for s in REGION_STATIONS}
    at = NOON - timedelta(days=10)
    async with core.sessions() as session, session.begin():
        for code, days in (("GZA", 20), ("GZB", 100), ("GZD", 200)):
            row = await session.get(StationRow, ids[code])
            assert row is not None
            row.verified_at = NOON - timedelta(days=days)
        for user, stars in ((1, 5), (2, 4), (3, 5)):
            session.add(
                RatingRow(station_id=ids["GZA"], user_id=user, stars=stars, created_at=at, updated_at=at)
            )
        for user, stars in ((1, 1), (2, 2), (3, 2)):
            session.add(
                RatingRow(station_id=ids["GZB"], user_id=user, stars=stars, created_at=at, updated_at=at)
            )
        # A rating before the period is not this year's.
        old = NOON - timedelta(days=400)
        session.add(RatingRow(station_id=ids["GZD"], user_id=9, stars=1, created_at=old, updated_at=old))
        for code, status, reporters in (("GZB", CaseStatus.APPROVED, 3), ("GZD", CaseStatus.REJECTED, 1)):
            case = CaseRow(
                station_id=ids[code],
                region="440106",
                kind="closed_permanently",
                status=status.value,
                reporters=reporters,
                created_at=at,
                updated_at=at,
            )
            session.add(case)
            await session.flush()
            for n in range(reporters):
                session.add(
                    ReportRow(
                        case_id=case.id,
                        station_id=ids[code],
                        reporter_id=100 + n,
                        kind=case.kind,
                        created_at=at,
                    )
                )
    for _ in range(30):
        core.evaluation.record(ids["GZA"], UsageKind.VIEW, NOON - timedelta(days=3))
    for _ in range(5):
        core.evaluation.record(ids["GZA"], UsageKind.NAVIGATE, NOON - timedelta(days=3))
    core.evaluation.record(ids["GZA"], UsageKind.CALL, NOON)
    core.evaluation.record(ids["GZB"], UsageKind.VIEW, NOON)
    core.evaluation.record(ids["GZD"], UsageKind.VIEW, NOON)
    core.evaluation.record(ids["GZD"], UsageKind.NAVIGATE, NOON)
    # Before the period: not counted in it.
    core.evaluation.record(ids["GZC"], UsageKind.NAVIGATE, NOON - timedelta(days=500))


async def test_the_report_puts_stations_that_fail_or_serve_least_first(settings: Settings) -> None:
    async with open_core(settings) as core:
        await core.stations.save_records(REGION_STATIONS)
        await seed_history(core)
        report = await core.evaluation.evaluate("4401", NOON)
    assert (report.since, report.until) == (CHINA_DAY - timedelta(days=364), CHINA_DAY)
    by_code = {s.code: s for s in report.stations}
    assert set(by_code) == {"GZA", "GZB", "GZC", "GZD"}  # Shenzhen is another region
    gza, gzb, gzc, gzd = (by_code[c] for c in ("GZA", "GZB", "GZC", "GZD"))
    assert (gza.views, gza.navigations, gza.calls, gza.ratings) == (30, 5, 1, 3)
    assert gza.rating_average == pytest.approx(14 / 3) and gza.days_since_verified == 20
    assert gza.concerns == ()
    assert (gzb.closure_reports, gzb.closures_confirmed, gzb.rating_average) == (3, 1, pytest.approx(5 / 3))
    assert gzb.concerns == (Concern.CLOSURE_CONFIRMED, Concern.LOW_RATING)
    assert gzc.concerns == (Concern.UNUSED, Concern.STALE) and gzc.days_since_verified is None
    assert (gzd.closures_rejected, gzd.ratings, gzd.concerns) == (1, 0, (Concern.STALE,))
    assert [s.code for s in report.stations] == ["GZB", "GZC", "GZD", "GZA"]
    assert [s.rank for s in report.stations] == [1, 2, 3, 4]


async def test_the_report_covers_the_days_asked_for(sqlite_settings: Settings) -> None:
    async with open_core(sqlite_settings) as core:
        await core.stations.save_records(REGION_STATIONS)
        await seed_history(core)
        recent = await core.evaluation.evaluate("440106", NOON, since=CHINA_DAY - timedelta(days=1))
        older = await core.evaluation.evaluate(
            "4401", NOON, since=CHINA_DAY - timedelta(days=600), until=CHINA_DAY - timedelta(days=300)
        )
    assert {s.code: s.views for s in recent.stations} == {"GZA": 0, "GZB": 1}
    assert {s.code: s.navigations for s in older.stations}["GZC"] == 1


async def test_staff_get_the_report_of_their_region_only(sqlite_settings: Settings) -> None:
    shenzhen = Access(12, ((Role.STAFF, "4403"),))
    guangzhou = Access(11, ((Role.STAFF, "4401"),))
    async with open_core(sqlite_settings) as core:
        await core.stations.save_records(REGION_STATIONS)
        with pytest.raises(NotAllowed):
            await core.evaluation.evaluate("4401", NOON, access=shenzhen)
        with pytest.raises(NotAllowed):
            await core.evaluation.evaluate("44", NOON, access=guangzhou)
        report = await core.evaluation.evaluate("440106", NOON, access=guangzhou)
    assert {s.code for s in report.stations} == {"GZA", "GZB"}


# -- privacy ----------------------------------------------------------------------------------------------


async def test_the_usage_table_holds_no_rider_and_no_position(tmp_path: Path) -> None:
    async with bot_and_web(tmp_path) as env:
        mark = env.api.mark()
        await env.api.send_location(env.user_id, HOME[0], HOME[1], language_code="en")
        results = await env.api.wait_for(
            lambda: next(
                (m for m in env.api.changes_since(env.user_id, mark)[0] if button_data(m, "st:")), None
            )
        )
        await env.api.press(
            env.user_id, results.message_id, button_data(results, "st:")[0], language_code="en"
        )
        await env.api.wait_for(lambda: env.core.evaluation.counter.pending)
        await env.core.evaluation.counter.flush()
        async with env.core.engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: [c["name"] for c in inspect(sync).get_columns("station_usage")]
            )
            rows = (await conn.execute(text("SELECT * FROM station_usage"))).all()
    assert columns == ["station_id", "day", "views", "navigations", "calls"]
    assert len(rows) == 1
    values = {str(value) for value in rows[0]}
    assert str(env.user_id) not in values
    assert not any(
        str(round(coordinate, 2)) in value for value in values for coordinate in (*HOME, *north(0))
    )


# -- the command line -------------------------------------------------------------------------------------


def test_the_command_line_writes_the_report_as_a_table_csv_and_xlsx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import openpyxl

    from bot.cli import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]

    async def seed() -> None:
        async with open_core(settings) as core:
            await core.stations.save_records(REGION_STATIONS)
            await seed_history(core)

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.setattr("bot.cli._", lambda message: message)  # English whatever the machine's language
    today = date.today()
    since = (today - timedelta(days=800)).isoformat()
    assert main(["analytics", "stations", "--region", "4401", "--since", since, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:4] == ["Rank", "Code", "Name", "Region"]
    assert [row[1] for row in rows[1:]] == ["GZB", "GZC", "GZD", "GZA"]
    assert "4 stations of 4401" in err

    assert main(["analytics", "stations", "--region", "4401", "--since", since]) == 0
    table, _err = capsys.readouterr()
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["Rank", "Code", "Name"] and len(lines) == 5
    assert "closure confirmed; low rating" in lines[1]

    out_file = tmp_path / "evaluation.xlsx"
    assert main(["analytics", "stations", "--region", "440106", "--out", str(out_file)]) == 0
    sheet = list(openpyxl.load_workbook(out_file).active.iter_rows(values_only=True))
    assert sheet[0][1] == "Code" and sorted(row[1] for row in sheet[1:]) == ["GZA", "GZB"]

    assert main(["analytics", "stations", "--region", "44x"]) == 2
    assert (
        main(["analytics", "stations", "--region", "4401", "--since", "2026-12-05", "--until", "2026-12-01"])
        == 2
    )
