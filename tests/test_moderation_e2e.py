"""Reports, moderation, lifecycle and ratings end to end through the real dispatcher and HTTP session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from botkit import Env, button_data, env, names_in

from bot.i18n import translator
from domain.values import StationStatus

__all__ = ["env"]

STAFF, OTHER_STAFF, VOLUNTEER, ADMIN = 900, 901, 902, 903
RIDERS = (501, 502, 503)
en = translator("en").gettext


async def grant_roles(env: Env) -> None:
    await env.core.roles.grant(STAFF, "staff", "4401")
    await env.core.roles.grant(OTHER_STAFF, "staff", "4403")
    await env.core.roles.grant(VOLUNTEER, "volunteer")
    await env.core.roles.grant(ADMIN, "admin")


async def act(env: Env, user: int, action: Any, lang: str = "en") -> Any:
    """Run a user action and return the newest bot message in their chat after it."""
    mark = env.api.mark()
    await action
    return await env.api.wait_for_change(user, mark)


async def open_card(env: Env, user: int, code: str = "GZ0001", lang: str = "en") -> Any:
    results = await env.act(env.api.send_location(user, 23.13, 113.26, language_code=lang), user)
    station = await env.core.stations.get(code)
    data = next(d for d in button_data(results, "st:") if d.startswith(f"st:{station.id}:"))
    await env.api.press(user, results.message_id, data, language_code=lang)
    # The card comes first, then a venue for the map: wait for both.
    await env.api.wait_for(lambda: any(m.venue for m in env.api.bot_messages(user)[-1:]))
    return next(m for m in reversed(env.api.bot_messages(user)) if f"[{code}]" in m.text or code in m.text)


async def report(env: Env, user: int, kind: str, lang: str = "en", code: str = "GZ0001") -> Any:
    card = await open_card(env, user, code, lang)
    start = button_data(card, "rp:s:")[0]
    kinds = await act(env, user, env.api.press(user, card.message_id, start, language_code=lang))
    choice = next(d for d in button_data(kinds, "rp:k:") if d.endswith(f":{kind}"))
    extras = await act(env, user, env.api.press(user, kinds.message_id, choice, language_code=lang))
    return extras


async def send_report(env: Env, user: int, extras: Any, lang: str = "en") -> Any:
    go = button_data(extras, "rp:go:")[0]
    return await act(env, user, env.api.press(user, extras.message_id, go, language_code=lang))


async def open_case(env: Env, staff: int = STAFF) -> Any:
    queue = await act(env, staff, env.api.send_text(staff, "/reports", language_code="en"))
    view = button_data(queue, "md:v:")[0]
    return await act(env, staff, env.api.press(staff, queue.message_id, view, language_code="en"))


def riders_see(env: Env, code: str = "GZ0001") -> bool:
    from domain.values import GeoPoint

    hits = env.core.search.find_nearest_open(GeoPoint(23.13, 113.26), 10, (), env.clock())
    return code in [h.code for h in hits]


@pytest.mark.parametrize("lang", ["zh-hans", "zh-hant", "en"])
async def test_report_then_approval_hides_the_station_and_thanks_the_reporter(env: Env, lang: str) -> None:
    await grant_roles(env)
    extras = await report(env, 501, "closed_now", lang)
    thanks = await send_report(env, 501, extras, lang)
    locale = {"zh-hans": "zh_Hans", "zh-hant": "zh_Hant", "en": "en"}[lang]
    assert translator(locale).gettext("🙏 Thank you! Union staff will check it.") in thanks.text
    case = await open_case(env)
    assert "GZ0001" in case.text and en("{count} people report this").format(count=1) in case.text
    approve = button_data(case, "md:ok:")[0]
    mark = env.api.mark()
    await env.api.press(STAFF, case.message_id, approve, language_code="en")
    told = await env.api.wait_for_change(501, mark)
    expected = translator(locale).gettext(
        "✅ Thank you! Your report about {name} was confirmed and the station's information is updated."
    )
    assert told.text == expected.format(name="天河移动营业厅工会驿站")
    assert not riders_see(env)
    results = await env.act(env.api.send_location(502, 23.13, 113.26, language_code="en"), 502)
    assert "天河移动营业厅工会驿站" not in names_in(results.text)


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
async def test_staff_see_case_and_history_times_in_beijing_time(env: Env, lang: str) -> None:
    await grant_roles(env)
    await send_report(env, 501, await report(env, 501, "closed_now"))
    assert env.clock() == datetime(2025, 6, 3, 4, 0, tzinfo=UTC)
    locale = {"zh-hans": "zh_Hans", "en": "en"}[lang]
    beijing = "2025-06-03 12:00 " + translator(locale).gettext("Beijing time")
    queue = await act(env, STAFF, env.api.send_text(STAFF, "/reports", language_code=lang))
    view = button_data(queue, "md:v:")[0]
    case = await act(env, STAFF, env.api.press(STAFF, queue.message_id, view, language_code=lang))
    assert beijing in case.text and "UTC" not in case.text, case.text
    await env.api.press(STAFF, case.message_id, button_data(case, "md:ok:")[0], language_code=lang)
    await env.settle()
    history = await act(env, STAFF, env.api.send_text(STAFF, "/history GZ0001", language_code=lang))
    assert beijing in history.text, history.text


async def test_rejection_leaves_the_station_visible(env: Env) -> None:
    await grant_roles(env)
    await send_report(env, 501, await report(env, 501, "closed_now"))
    case = await open_case(env)
    mark = env.api.mark()
    await env.api.press(STAFF, case.message_id, button_data(case, "md:no:")[0], language_code="en")
    told = await env.api.wait_for_change(501, mark)
    assert "left the station as it is" in told.text
    assert riders_see(env)
    assert (await env.core.stations.get("GZ0001")).status is StationStatus.ACTIVE


async def test_three_reports_without_evidence_reach_staff_but_hide_nothing(env: Env) -> None:
    # Headcount alone no longer hides a station (tests/test_closure_trust_e2e.py: evidence and trust do).
    await grant_roles(env)
    for rider in RIDERS:
        thanks = await send_report(env, rider, await report(env, rider, "closed_now"))
    assert en("The station is hidden from riders until staff confirm.") not in thanks.text
    assert en("{count} people report this problem.").format(count=3) in thanks.text
    assert (
        en("Reports sent from the station itself, with your location, can hide it from riders at once.")
        in thanks.text
    )
    assert riders_see(env)
    case = await open_case(env)
    assert en("{count} people report this").format(count=3) in case.text
    assert en("Weight of on-site reports by trusted reporters: {weight}").format(weight="0") in case.text
    assert "🙈" not in case.text


async def test_wrong_hours_are_validated_then_applied(env: Env) -> None:
    await grant_roles(env)
    await report(env, 501, "wrong_hours")
    refused = await act(env, 501, env.api.send_text(501, "Mo-Fx 25:00", language_code="en"))
    assert "cannot be read" in refused.text
    extras = await act(env, 501, env.api.send_text(501, "Mo-Su 06:00-07:00", language_code="en"))
    await send_report(env, 501, extras)
    case = await open_case(env)
    assert "Mo-Su 06:00-07:00" in case.text
    await env.api.press(STAFF, case.message_id, button_data(case, "md:ok:")[0], language_code="en")
    await env.api.wait_for(lambda: not riders_see(env))
    assert (await env.core.stations.get("GZ0001")).opening_hours == "Mo-Su 06:00-07:00"


async def test_wrong_hours_typed_in_chinese_are_explained_in_chinese_then_applied(env: Env) -> None:
    await grant_roles(env)
    await report(env, 501, "wrong_hours", lang="zh-hans")
    refused = await act(env, 501, env.api.send_text(501, "周一至周五<b>", language_code="zh-hans"))
    assert "无法识别“<b>”" in refused.text and "“&lt;b&gt;”" in refused.html  # escaped, shown as typed
    assert "周一至周五 9:00-17:00，周末休息" in refused.text  # a form that works
    typed = "每天 6:00-7:00，节假日休息"
    extras = await act(env, 501, env.api.send_text(501, typed, language_code="zh-hans"))
    await send_report(env, 501, extras, lang="zh-hans")
    case = await open_case(env)
    assert typed in case.text
    await env.api.press(STAFF, case.message_id, button_data(case, "md:ok:")[0], language_code="en")
    await env.api.wait_for(lambda: not riders_see(env))
    after = await env.core.stations.get("GZ0001")
    assert (after.opening_hours, after.opening_hours_text) == ("Mo-Su 06:00-07:00; PH off", typed)
    card = await act(env, STAFF, env.api.send_text(STAFF, "/station GZ0001", language_code="en"))
    assert f"As posted: {typed}" in card.text


async def test_staff_edit_hours_in_chinese(env: Env) -> None:
    await grant_roles(env)
    card = await act(env, STAFF, env.api.send_text(STAFF, "/station GZ0001", language_code="zh-hans"))
    hours = button_data(card, "sf:hr:")[0]
    prompt = await act(env, STAFF, env.api.press(STAFF, card.message_id, hours, language_code="zh-hans"))
    assert "周一至周五 8:00-18:00，周末休息" in prompt.text
    refused = await act(env, STAFF, env.api.send_text(STAFF, "8:00-6:00 周一至周五", language_code="zh-hans"))
    assert "“8:00-6:00”结束早于开始" in refused.text
    saved = await act(env, STAFF, env.api.send_text(STAFF, "周一至周五 8:00-18:00", language_code="zh-hans"))
    assert saved.text
    after = await env.core.stations.get("GZ0001")
    assert (after.opening_hours, after.opening_hours_text) == ("Mo-Fr 08:00-18:00", "周一至周五 8:00-18:00")


async def test_an_amenity_report_with_a_photo_and_on_site_location(env: Env) -> None:
    await grant_roles(env)
    card = await open_card(env, 501)
    kinds = await act(
        env, 501, env.api.press(501, card.message_id, button_data(card, "rp:s:")[0], language_code="en")
    )
    amenities = await act(
        env,
        501,
        env.api.press(
            501,
            kinds.message_id,
            next(d for d in button_data(kinds, "rp:k:") if d.endswith("amenity_broken")),
            language_code="en",
        ),
    )
    toilet = next(d for d in button_data(amenities, "rp:a:") if d.endswith(":toilet"))
    extras = await act(env, 501, env.api.press(501, amenities.message_id, toilet, language_code="en"))
    station = await env.core.stations.get("GZ0001")
    await act(env, 501, env.api.send_location(501, station.lat + 0.001, station.lon, language_code="en"))
    thanks = await send_report(env, 501, extras)
    assert "on site" in thanks.text
    case = await open_case(env)
    assert en("{count} on site").format(count=1) in case.text
    await act(
        env, STAFF, env.api.press(STAFF, case.message_id, button_data(case, "md:ok:")[0], language_code="en")
    )
    assert (await env.core.stations.get("GZ0001")).amenities == ("drinking_water",)


PRIVILEGED = [
    "md:ok:{case}:0",
    "md:no:{case}:0",
    "md:ask:{case}:0",
    "md:v:{case}:0",
    "md:p:0:1",
    "sf:ver:{station}:",
    "sf:tc:{station}:",
    "sf:cl:{station}:",
    "sf:hr:{station}:",
    "sf:ph:{station}:",
    "sf:am:{station}:",
    "sf:hist:{station}:",
    "sf:ro:{station}:",
]


@pytest.mark.parametrize("intruder", [501, VOLUNTEER, OTHER_STAFF])
async def test_every_privileged_button_is_refused_for_riders_volunteers_and_other_regions(
    env: Env, intruder: int
) -> None:
    await grant_roles(env)
    await send_report(env, 502, await report(env, 502, "closed_now"))
    cases, _ = await env.core.reports.open_cases(await env.core.roles.access(ADMIN))
    station = await env.core.stations.get("GZ0001")
    anchor = await act(env, intruder, env.api.send_text(intruder, "/help", language_code="en"))
    for template in PRIVILEGED:
        if intruder == OTHER_STAFF and template.startswith("md:p"):
            continue  # staff page through their own region's (empty) queue
        data = template.format(case=cases[0].id, station=station.id)
        query = await env.api.press(intruder, anchor.message_id, data, language_code="en", forged=True)
        answer = await env.api.wait_for(lambda q=query: env.api.callback_answers.get(q))
        assert answer["text"] == "Not allowed.", data
    assert (await env.core.stations.get("GZ0001")).status is StationStatus.ACTIVE
    assert (await env.core.reports.case(cases[0].id, await env.core.roles.access(ADMIN))).status == "open"
    assert await env.core.station_admin.history(station.id, await env.core.roles.access(ADMIN)) == []
    for command in ("/reports", "/station GZ0001", "/stale", "/history GZ0001"):
        reply = await act(env, intruder, env.api.send_text(intruder, command, language_code="en"))
        if intruder == OTHER_STAFF and command in ("/reports", "/stale"):
            assert "No open reports" in reply.text or "verified" in reply.text or "Not verified" in reply.text
        else:
            assert reply.text == "This command is for union staff.", command


async def test_staff_edit_phone_and_close_for_good_with_a_reason(env: Env) -> None:
    await grant_roles(env)
    card = await act(env, STAFF, env.api.send_text(STAFF, "/station GZ0002", language_code="en"))
    await act(
        env, STAFF, env.api.press(STAFF, card.message_id, button_data(card, "sf:ph:")[0], language_code="en")
    )
    refused = await act(env, STAFF, env.api.send_text(STAFF, "call me maybe", language_code="en"))
    assert refused.text.startswith("Not saved")
    saved = await act(env, STAFF, env.api.send_text(STAFF, "020-87654321", language_code="en"))
    assert saved.text == "Phone number saved."
    await act(
        env, STAFF, env.api.press(STAFF, card.message_id, button_data(card, "sf:cl:")[0], language_code="en")
    )
    closed = await act(env, STAFF, env.api.send_text(STAFF, "房东收回场地", language_code="en"))
    assert "Closed for good" in closed.text
    station = await env.core.stations.get("GZ0002")
    assert (station.phone, station.status) == ("020-87654321", StationStatus.CLOSED)
    assert not riders_see(env, "GZ0002")


async def test_a_rider_rates_a_station_and_the_card_shows_it(env: Env) -> None:
    card = await open_card(env, 501)
    stars = await act(
        env, 501, env.api.press(501, card.message_id, button_data(card, "rt:")[0], language_code="en")
    )
    four = next(d for d in button_data(stars, "rt:") if d.endswith(":4"))
    rated = await act(env, 501, env.api.press(501, stars.message_id, four, language_code="en"))
    rating = en("{average} from {count} ratings").format(average="4.0", count=1)
    assert rating in rated.text
    saved = await act(env, 501, env.api.send_text(501, "很干净，有热水", language_code="en"))
    assert saved.text == "Comment saved. Thank you!"
    again = await open_card(env, 502)
    assert rating in again.text


async def test_admins_grant_roles_in_the_bot_and_others_cannot(env: Env) -> None:
    await grant_roles(env)
    reply = await act(env, ADMIN, env.api.send_text(ADMIN, "/grant 777 staff 4401", language_code="en"))
    assert reply.text == "Granted."
    assert (await env.core.roles.access(777)).can_manage("440104")
    reply = await act(env, STAFF, env.api.send_text(STAFF, "/grant 778 admin", language_code="en"))
    assert reply.text == "This command is for admins."
    reply = await act(env, ADMIN, env.api.send_text(ADMIN, "/grant 779 staff", language_code="en"))
    assert "region" in reply.text
    reply = await act(env, ADMIN, env.api.send_text(ADMIN, "/revoke 777 staff", language_code="en"))
    assert reply.text == "Revoked."


async def test_staff_get_a_digest_of_new_cases(env: Env) -> None:
    from bot.telegram import build_bot, build_i18n, send_digests

    await grant_roles(env)
    for staff in (STAFF, OTHER_STAFF, ADMIN):
        await act(env, staff, env.api.send_text(staff, "/start", language_code="en"))
    await send_report(env, 501, await report(env, 501, "closed_now"))
    sender = build_bot(env.api.token, env.api.url)
    try:
        assert (
            await send_digests(sender, env.core, build_i18n(), env.clock()) == 2
        )  # the region's staff, admin
        assert await send_digests(sender, env.core, build_i18n(), env.clock()) == 0
    finally:
        await sender.session.close()
    digest = env.api.last_bot_message(STAFF)
    assert digest is not None and "New reports in your region: 1" in digest.text
    assert not any("New reports" in m.text for m in env.api.bot_messages(OTHER_STAFF))


async def test_reporters_hear_a_decision_made_in_the_console_from_the_bot_once(env: Env) -> None:
    from bot.services.reports import Decision
    from bot.telegram import build_bot, build_i18n, tell_outcomes

    await grant_roles(env)
    await send_report(env, 501, await report(env, 501, "closed_now"))
    cases, _ = await env.core.reports.open_cases(await env.core.roles.access(STAFF))
    # Decided in the console (no Telegram there): the bot tells the reporter afterwards.
    await env.core.reports.decide(
        cases[0].id, Decision.APPROVE, await env.core.roles.access(STAFF), datetime.now(UTC), tell_later=True
    )
    sender = build_bot(env.api.token, env.api.url)
    try:
        told = await asyncio.gather(*(tell_outcomes(sender, env.core, build_i18n()) for _ in range(3)))
        assert sorted(told) == [0, 0, 1]  # one replica tells, once
        assert await tell_outcomes(sender, env.core, build_i18n()) == 0
    finally:
        await sender.session.close()
    outcome = env.api.last_bot_message(501)
    assert outcome is not None and outcome.text.startswith("✅ Thank you! Your report about")
