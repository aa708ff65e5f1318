"""Closures need evidence, not headcount: the safety net end to end, through the real dispatcher and HTTP
session against the local Bot API server.

The attack it answers: three fresh accounts that never shared a location sent forged report buttons
(`rp:s:<id>`, `rp:k:<id>:closed_now`, `rp:go:<id>`) for any station id and hid every station they aimed at.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from botkit import LANGS, STATIONS, Env, button_data, env, names_in
from sqlalchemy import update
from test_moderation_e2e import STAFF, act, grant_roles, report, riders_see, send_report

from bot.i18n import translator
from domain.values import GeoPoint, StationStatus
from storage.models import UserRow

__all__ = ["env"]

ATTACKERS = (601, 602, 603)
TARGETS = [s.code for s in STATIONS if s.status is StationStatus.ACTIVE]
en = translator("en").gettext


async def forge(env: Env, user: int, data: str, lang: str = "en") -> dict[str, Any]:
    """Press a button the bot never offered (a modified client can), and return the bot's answer."""
    query = await env.api.press(user, 1, data, language_code=lang, forged=True)
    return await env.api.wait_for(lambda: env.api.callback_answers.get(query))


async def forged_closure(env: Env, user: int, station_id: int, lang: str = "en") -> dict[str, Any]:
    await forge(env, user, f"rp:s:{station_id}:", lang)
    await forge(env, user, f"rp:k:{station_id}:closed_now", lang)
    return await forge(env, user, f"rp:go:{station_id}:", lang)


async def known_for_two_days(env: Env, *riders: int) -> None:
    """Riders who searched once (the bot has seen them) and whom the bot has known for two days."""
    for rider in riders:
        await env.act(env.api.send_location(rider, 23.13, 113.26, language_code="en"), rider)
    async with env.core.sessions() as session, session.begin():
        await session.execute(
            update(UserRow).where(UserRow.id.in_(riders)).values(created_at=env.clock.now - timedelta(days=2))
        )


async def report_on_site(
    env: Env, rider: int, code: str = "GZ0001", metres: float = 50, lang: str = "en"
) -> Any:
    """Report a station closed from `metres` north of it, with a location message, the way a rider does."""
    await report(env, rider, "closed_now", lang, code)
    station = await env.core.stations.get(code)
    here = await act(
        env,
        rider,
        env.api.send_location(rider, station.lat + metres / 111_000, station.lon, language_code=lang),
    )
    assert button_data(here, "rp:go:"), here.text
    return await send_report(env, rider, here, lang)


def listed(env: Env) -> list[str]:
    """The stations riders are shown as in service (open now or not)."""
    found = set()
    for point in (GeoPoint(23.13, 113.26), GeoPoint(37.11, 79.93)):
        hits = env.core.search.find_nearest_open(point, 20, (), env.clock(), include_closed=True)
        found |= {h.code for h in hits if h.status is StationStatus.ACTIVE}
    return sorted(found)


async def test_three_fresh_accounts_with_forged_report_buttons_hide_nothing(env: Env) -> None:
    await grant_roles(env)
    assert listed(env) == sorted(TARGETS) and len(TARGETS) == 12  # one of them in Xinjiang
    ids = {code: (await env.core.stations.get(code)).id for code in TARGETS}
    answers = []
    # Standing at a station (or claiming to, with a location picked on the map) does not make a fresh
    # account count.
    for attacker in ATTACKERS:
        station_id = ids["GZ0101"]
        await forge(env, attacker, f"rp:s:{station_id}:")
        await forge(env, attacker, f"rp:k:{station_id}:closed_now")
        station = await env.core.stations.get("GZ0101")
        here = await act(
            env, attacker, env.api.send_location(attacker, station.lat, station.lon, language_code="en")
        )
        assert (
            en("Location added: you are {distance} from the station. Tap “Send report” when ready.").format(
                distance=en("{metres} m").format(metres=0)
            )
            == here.text
        )
        answers.append(await forge(env, attacker, f"rp:go:{station_id}:"))
    for attacker in ATTACKERS:
        for code in TARGETS:
            answers.append(await forged_closure(env, attacker, ids[code]))
    assert listed(env) == sorted(TARGETS)
    for code in TARGETS:
        assert (await env.core.stations.get(code)).status is StationStatus.ACTIVE
    # Each account got 5 closure reports through (they reach staff as cases), then a clear refusal.
    limit = en("You sent {count} closure reports today, the most one person can. Thank you!").format(count=5)
    again = en("You reported this station less than an hour ago. Thank you!")
    texts = [a["text"] for a in answers]
    assert (texts.count(None), texts.count(limit), texts.count(again)) == (3 * 5, 3 * 7, 3)
    cases, total = await env.core.reports.open_cases(await env.core.roles.access(STAFF))
    assert total == 5 and {c.reporters for c in cases} == {3} and {c.weight for c in cases} == {0.0}
    assert sorted(c.on_site for c in cases) == [0, 0, 0, 0, 3]
    # Nothing to warn riders about either: none of it weighs anything.
    results = await env.act(env.api.send_location(501, 23.13, 113.26, language_code="en"), 501)
    assert "reported it closed" not in results.text


async def test_three_trusted_riders_on_site_hide_a_station_and_staff_restore_it(env: Env) -> None:
    await grant_roles(env)
    await known_for_two_days(env, 501, 502, 503)
    for rider in (501, 502):
        thanks = await report_on_site(env, rider)
        assert en("📍 Marked as reported on site.") in thanks.text
        assert riders_see(env)
    thanks = await report_on_site(env, 503)
    assert en("The station is hidden from riders until staff confirm.") in thanks.text
    assert en("{count} people report this problem.").format(count=3) in thanks.text
    assert not riders_see(env)
    card = await act(env, STAFF, env.api.send_text(STAFF, "/station GZ0001", language_code="en"))
    assert "temporarily closed" in card.text
    await env.api.press(STAFF, card.message_id, button_data(card, "sf:ro:")[0], language_code="en")
    await env.api.wait_for(lambda: riders_see(env))
    history = await act(env, STAFF, env.api.send_text(STAFF, "/history GZ0001", language_code="en"))
    assert "reopened" in history.text and "hidden automatically" in history.text and "system" in history.text


async def test_a_closure_report_from_afar_reaches_staff_but_hides_nothing(env: Env) -> None:
    await grant_roles(env)
    await known_for_two_days(env, 501, 502, 503)
    for rider in (501, 502, 503):
        thanks = await report_on_site(env, rider, metres=400)
        assert en("📍 Marked as reported on site.") not in thanks.text
        assert (
            en("Reports sent from the station itself, with your location, can hide it from riders at once.")
            in thanks.text
        )
    assert riders_see(env)
    cases, total = await env.core.reports.open_cases(await env.core.roles.access(STAFF))
    assert total == 1 and cases[0].reporters == 3 and cases[0].on_site == 0


@pytest.mark.parametrize("lang", ["zh-hans", "zh-hant", "en"])
async def test_the_daily_limit_is_answered_in_the_riders_language(env: Env, lang: str) -> None:
    codes = ["GZ0001", "GZ0002", "GZ0003", "GZ0101", "GZ0102", "GZ0103"]
    answers = [await forged_closure(env, 501, (await env.core.stations.get(code)).id, lang) for code in codes]
    tr = translator(LANGS[lang]).gettext
    assert [a["text"] for a in answers[:5]] == [None] * 5
    expected = tr("You sent {count} closure reports today, the most one person can. Thank you!")
    assert (answers[5]["text"], answers[5]["show_alert"]) == (expected.format(count=5), True)


async def test_the_circuit_breaker_stops_auto_hiding_and_alerts_the_regions_staff(env: Env) -> None:
    from bot.telegram import build_bot, build_i18n, send_digests

    await grant_roles(env)
    env.core.reports.policy = replace(env.core.reports.policy, region_hides_per_hour=1)
    for staff in (STAFF, 901, 903):
        await act(env, staff, env.api.send_text(staff, "/start", language_code="en"))
    await known_for_two_days(env, 501, 502, 503, 504, 505, 506)
    for rider in (501, 502, 503):
        await report_on_site(env, rider, "GZ0001")
    assert not riders_see(env, "GZ0001")
    for rider in (504, 505, 506):
        thanks = await report_on_site(env, rider, "GZ0002")
        assert en("The station is hidden from riders until staff confirm.") not in thanks.text
    assert riders_see(env, "GZ0002")
    sender = build_bot(env.api.token, env.api.url)
    try:
        assert (
            await send_digests(sender, env.core, build_i18n(), env.clock()) == 2
        )  # the region's staff, admin
    finally:
        await sender.session.close()
    alert = env.api.last_bot_message(STAFF)
    assert (
        alert is not None
        and en("Automatic hiding paused in region {region}").format(region="4401") in alert.text
    )
    # Staff read the pause's end in Beijing time, not UTC.
    assert en("Beijing time") in alert.text and "UTC" not in alert.text, alert.text
    assert not any("paused" in m.text for m in env.api.bot_messages(901))  # Shenzhen's staff
    # The station stays listed, with its warning.
    results = await env.act(env.api.send_location(507, 23.13, 113.26, language_code="en"), 507)
    assert "越秀建设银行爱心驿站" in names_in(results.text)
    assert en("{count} riders reported it closed at {time}").format(count=3, time="12:00") in results.text


@pytest.mark.parametrize("lang", ["zh-hans", "zh-hant", "en"])
async def test_results_and_card_say_how_many_reported_a_station_closed_and_when(env: Env, lang: str) -> None:
    await grant_roles(env)
    await known_for_two_days(env, 501, 502)
    for rider in (501, 502):
        await report_on_site(env, rider)
    assert riders_see(env)
    tr = translator(LANGS[lang]).gettext
    line = "⚠️ " + tr("{count} riders reported it closed at {time}").format(count=2, time="12:00")
    results = await env.act(env.api.send_location(504, 23.13, 113.26, language_code=lang), 504)
    block = results.text.split("天河移动营业厅工会驿站")[1].split("\n\n")[0]
    assert line in block  # under that station, not another
    assert results.text.count("⚠️ ") == 1
    station = await env.core.stations.get("GZ0001")
    data = next(d for d in button_data(results, "st:") if d.startswith(f"st:{station.id}:"))
    await env.api.press(504, results.message_id, data, language_code=lang)
    await env.api.wait_for(lambda: any(m.venue for m in env.api.bot_messages(504)[-1:]))
    card = next(m for m in reversed(env.api.bot_messages(504)) if "GZ0001" in m.text)
    assert line in card.text
    # Staff see the same on their station card.
    staff_card = await act(env, STAFF, env.api.send_text(STAFF, "/station GZ0001", language_code="en"))
    assert (
        "⚠️ " + en("{count} riders reported it closed at {time}").format(count=2, time="12:00")
        in staff_card.text
    )
