"""Hostile input through the real dispatcher and HTTP session: forged ids, markup in names, buttons without
a message, and errors in the rider's language. Each case is one that once reached a rider as "Sorry,
something went wrong", as a reply Telegram refuses, or in the wrong language."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from botkit import Env, button_data, env

from bot.i18n import translator
from domain.values import StationStatus
from handlers.callbacks import SubscribeCb
from storage.models import SubscriptionRow

__all__ = ["env"]

STAFF, ADMIN, RIDER = 900, 903, 501
HUGE = "99999999999999999999"
SORRY = "Sorry, something went wrong"
STALE = "This button is out of date."
en = translator("en").gettext


async def grant_roles(env: Env) -> None:
    await env.core.roles.grant(STAFF, "staff", "4401")
    await env.core.roles.grant(ADMIN, "admin")


async def act(env: Env, user: int, action: Any) -> Any:
    mark = env.api.mark()
    await action
    return await env.api.wait_for_change(user, mark)


async def say(env: Env, user: int, text: str, lang: str = "en", first_name: str = "测试") -> Any:
    return await act(env, user, env.api.send_text(user, text, language_code=lang, first_name=first_name))


async def answer_to(env: Env, user: int, data: str, *, lang: str = "en", **kw: Any) -> str:
    """Press a forged button on the user's /help message; the text of the callback answer."""
    anchor = await say(env, user, "/help", lang)
    query = await env.api.press(
        user, kw.pop("message_id", anchor.message_id), data, language_code=lang, forged=True, **kw
    )
    answer = await env.api.wait_for(lambda: env.api.callback_answers.get(query))
    await env.settle()
    return str(answer["text"] or "")


def nobody_was_told_sorry(env: Env, *users: int) -> bool:
    return not any(SORRY in m.text for user in users for m in env.api.bot_messages(user))


async def station_id(env: Env, code: str = "GZ0001") -> int:
    return (await env.core.stations.get(code)).id


async def fsm_state(env: Env, user: int) -> str | None:
    key = StorageKey(bot_id=int(env.api.token.split(":")[0]), chat_id=user, user_id=user)
    return await env.dp.storage.get_state(key)


# -- ids out of range -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        f"st:{HUGE}:23.13:113.26",
        f"rp:s:{HUGE}:",
        f"rp:go:{HUGE}:",
        f"rt:{HUGE}:3",
        f"an:p:{HUGE}",
        f"md:v:{HUGE}:0",
        f"md:ok:{HUGE}:0",
        f"sf:ver:{HUGE}:",
        f"sf:hist:{HUGE}:",
        "st:-1:23.13:113.26",
        "rt:0:3",
        "md:p:0:-5",
    ],
)
async def test_an_id_out_of_range_gets_the_stale_answer_and_changes_nothing(env: Env, data: str) -> None:
    await grant_roles(env)
    for user in (RIDER, STAFF, ADMIN):
        assert await answer_to(env, user, data) == STALE, (user, data)
    assert nobody_was_told_sorry(env, RIDER, STAFF, ADMIN)
    assert (await env.core.stations.get("GZ0001")).status is StationStatus.ACTIVE


async def test_a_button_no_handler_knows_gets_the_stale_answer(env: Env) -> None:
    for data in ("zz:1:2", "\x00\xff", "st", "rp:s:abc"):
        assert await answer_to(env, RIDER, data) == STALE, data
    assert nobody_was_told_sorry(env, RIDER)


@pytest.mark.parametrize("args", ["² staff 44", "٤٤ staff 44", f"{HUGE} volunteer", "0 volunteer"])
async def test_grant_and_revoke_take_ascii_ids_in_range_only(env: Env, args: str) -> None:
    await grant_roles(env)
    usage = en("Usage: /grant USER_ID volunteer|staff|admin [REGION] — /revoke USER_ID ROLE [REGION]")
    for command in ("/grant", "/revoke"):
        reply = await say(env, ADMIN, f"{command} {args}")
        assert reply.text == usage, (command, args)
    assert nobody_was_told_sorry(env, ADMIN)


async def test_a_staff_region_in_non_ascii_digits_is_refused(env: Env) -> None:
    await grant_roles(env)
    reply = await say(env, ADMIN, "/grant 777 staff ٤٤")
    assert "region" in reply.text
    assert not (await env.core.roles.access(777)).is_staff


# -- markup in user-supplied names ------------------------------------------------------------------------
HOSTILE_NAME = "A&B <i>x</i> <script>"


async def open_card(env: Env, user: int, lang: str = "en") -> Any:
    results = await env.act(env.api.send_location(user, 23.13, 113.26, language_code=lang), user)
    sid = await station_id(env)
    data = next(d for d in button_data(results, "st:") if d.startswith(f"st:{sid}:"))
    await env.api.press(user, results.message_id, data, language_code=lang)
    await env.api.wait_for(lambda: any(m.venue for m in env.api.bot_messages(user)[-1:]))
    return next(m for m in reversed(env.api.bot_messages(user)) if "GZ0001" in m.text)


async def rename_station(env: Env, name: str) -> None:
    record = next(s for s in __import__("botkit").STATIONS if s.code == "GZ0001")
    from dataclasses import replace

    await env.core.stations.save_records([replace(record, name=name)])
    await env.core.reload_index()


async def test_station_names_are_escaped_in_the_report_and_rating_prompts(env: Env) -> None:
    await rename_station(env, HOSTILE_NAME)
    card = await open_card(env, RIDER)
    kinds = await act(
        env, RIDER, env.api.press(RIDER, card.message_id, button_data(card, "rp:s:")[0], language_code="en")
    )
    assert kinds.text == en("What is wrong with {name}?").format(name=HOSTILE_NAME)
    stars = await act(
        env, RIDER, env.api.press(RIDER, card.message_id, button_data(card, "rt:")[0], language_code="en")
    )
    assert stars.text == en("How was {name}?").format(name=HOSTILE_NAME)
    assert nobody_was_told_sorry(env, RIDER) and not env.api.errors


@pytest.mark.parametrize("first_name", ["<script>", "A&B <i>x", "</b>"])
async def test_first_names_with_markup_are_greeted_as_written(env: Env, first_name: str) -> None:
    reply = await say(env, 777, "/start", first_name=first_name)
    assert reply.text.startswith(f"Hello, {first_name}!")
    assert not env.api.errors


# -- the hours parser's message: escaped and in the rider's language -------------------------------------
async def start_wrong_hours(env: Env, lang: str) -> None:
    card = await open_card(env, RIDER, lang)
    kinds = await act(
        env, RIDER, env.api.press(RIDER, card.message_id, button_data(card, "rp:s:")[0], language_code=lang)
    )
    choice = next(d for d in button_data(kinds, "rp:k:") if d.endswith(":wrong_hours"))
    await act(env, RIDER, env.api.press(RIDER, kinds.message_id, choice, language_code=lang))


@pytest.mark.parametrize("typed", ["<br>", "Mo-Fr 08:00-18:00 <b>", "Mo-Xx", "08:00-", "PH +1 day", "24/7;;"])
async def test_typed_hours_that_cannot_be_read_are_explained_in_chinese(env: Env, typed: str) -> None:
    await start_wrong_hours(env, "zh-hans")
    reply = await say(env, RIDER, typed, "zh-hans")
    assert reply.text.startswith("无法识别这个开放时间"), reply.text
    for english in ("column", "expected", "unexpected", "free text", "supported", "the end"):
        assert english not in reply.text, reply.text
    assert nobody_was_told_sorry(env, RIDER) and not env.api.errors


async def test_typed_hours_markup_reaches_the_rider_as_text(env: Env) -> None:
    await start_wrong_hours(env, "en")
    reply = await say(env, RIDER, "<br>", "en")
    assert "<br>" in reply.text and not env.api.errors


# -- staff buttons: no message, someone else's chat -------------------------------------------------------
@pytest.mark.parametrize("action", ["cl", "hr", "ph", "am", "hist"])
async def test_staff_buttons_on_an_inaccessible_message_answer_cleanly_and_set_no_state(
    env: Env, action: str
) -> None:
    await grant_roles(env)
    sid = await station_id(env)
    answer = await answer_to(env, STAFF, f"sf:{action}:{sid}:", message_id=1, inaccessible=True)
    assert answer == STALE
    assert await fsm_state(env, STAFF) is None
    assert nobody_was_told_sorry(env, STAFF)


async def test_a_case_opened_from_an_inaccessible_message_answers_cleanly(env: Env) -> None:
    await grant_roles(env)
    answer = await answer_to(env, STAFF, "md:v:1:0", message_id=1, inaccessible=True)
    assert answer in (STALE, "Not allowed.")
    assert nobody_was_told_sorry(env, STAFF)


@pytest.mark.parametrize("action", ["cl", "hist", "am"])
async def test_staff_replies_never_go_to_another_chat(env: Env, action: str) -> None:
    await grant_roles(env)
    group = -100_777
    await env.api.send_text(RIDER, "hello", chat_id=group, chat_type="supergroup")
    sid = await station_id(env)
    answer = await answer_to(env, STAFF, f"sf:{action}:{sid}:", message_id=1, chat_id=group)
    assert answer == STALE
    assert not env.api.bot_messages(group)
    assert await fsm_state(env, STAFF) is None


# -- the rider's language everywhere ----------------------------------------------------------------------
async def test_history_names_actions_in_the_staff_members_language(env: Env) -> None:
    await grant_roles(env)
    card = await say(env, STAFF, "/station GZ0001", "zh-hans")
    await env.api.press(STAFF, card.message_id, button_data(card, "sf:tc:")[0], language_code="zh-hans")
    await env.settle()
    history = await say(env, STAFF, "/history GZ0001", "zh-hans")
    assert "close_temporarily" not in history.text
    assert translator("zh_Hans").gettext("closed temporarily") in history.text


async def test_grant_errors_are_in_the_admins_language(env: Env) -> None:
    await grant_roles(env)
    reply = await say(env, ADMIN, "/grant 777 staff", "zh-hans")
    assert reply.text == translator("zh_Hans").gettext(
        "Staff need a region: an adcode prefix of 2, 4 or 6 digits, e.g. 44 or 4401."
    )
    reply = await say(env, ADMIN, "/grant 777 boss", "zh-hans")
    assert "boss" not in reply.text or "unknown" not in reply.text
    assert reply.text == translator("zh_Hans").gettext("Unknown role: volunteer, staff or admin.")


async def test_report_errors_are_in_the_riders_language(env: Env) -> None:
    card = await open_card(env, RIDER, "zh-hans")
    kinds = await act(
        env,
        RIDER,
        env.api.press(RIDER, card.message_id, button_data(card, "rp:s:")[0], language_code="zh-hans"),
    )
    choice = next(d for d in button_data(kinds, "rp:k:") if d.endswith(":amenity_broken"))
    await act(env, RIDER, env.api.press(RIDER, kinds.message_id, choice, language_code="zh-hans"))
    sid = await station_id(env)
    # wifi is not among the station's amenities: a forged choice.
    await env.api.press(RIDER, kinds.message_id, f"rp:a:{sid}:wifi", language_code="zh-hans", forged=True)
    await env.settle()
    extras = env.api.last_bot_message(RIDER)
    query = await env.api.press(
        RIDER, extras.message_id, f"rp:go:{sid}:", language_code="zh-hans", forged=True
    )
    answer = await env.api.wait_for(lambda: env.api.callback_answers.get(query))
    zh = translator("zh_Hans").gettext
    assert answer["text"] == zh("This report cannot be sent: {reason}").format(
        reason=zh("the station does not list this amenity")
    )


async def test_rating_errors_are_in_the_riders_language(env: Env) -> None:
    card = await open_card(env, RIDER, "zh-hans")
    stars = await act(
        env,
        RIDER,
        env.api.press(RIDER, card.message_id, button_data(card, "rt:")[0], language_code="zh-hans"),
    )
    four = next(d for d in button_data(stars, "rt:") if d.endswith(":4"))
    await act(env, RIDER, env.api.press(RIDER, stars.message_id, four, language_code="zh-hans"))
    reply = await say(env, RIDER, "很" * 600, "zh-hans")
    zh = translator("zh_Hans").gettext
    assert reply.text == zh("A comment has at most {count} characters.").format(count=500)


# -- subscriptions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("region", ["99", "45", "²²", "4401", ""])
async def test_a_forged_province_subscription_is_refused(env: Env, region: str) -> None:
    assert await answer_to(env, RIDER, SubscribeCb(action="p", region=region).pack()) == STALE
    async with env.core.sessions() as session:
        assert await session.get(SubscriptionRow, RIDER) is None


async def test_a_province_the_bot_offers_can_be_subscribed(env: Env) -> None:
    await answer_to(env, RIDER, SubscribeCb(action="p", region="44").pack())
    async with env.core.sessions() as session:
        row = await session.get(SubscriptionRow, RIDER)
    assert row is not None and row.region == "44"


# -- buttons on a message without text -------------------------------------------------------------------
async def test_buttons_forged_on_a_message_without_text_answer_with_a_new_message(env: Env) -> None:
    await open_card(env, RIDER)
    venue = env.api.last_bot_message(RIDER)
    assert venue is not None and venue.venue
    sid = await station_id(env)
    for data in (f"rp:x:{sid}:", f"rt:{sid}:4"):
        query = await env.api.press(RIDER, venue.message_id, data, language_code="en", forged=True)
        await env.api.wait_for(lambda q=query: env.api.callback_answers.get(q))
        await env.settle()
    texts = [m.text for m in env.api.bot_messages(RIDER)[-3:]]
    assert en("Report cancelled.") in texts
    assert any(en("Add a comment? Type it now, or just carry on.") in t for t in texts)
    assert nobody_was_told_sorry(env, RIDER)
