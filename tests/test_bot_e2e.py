"""The rider's journey end to end: aiogram's real dispatcher, middlewares and HTTP session against the local
Bot API server, in each of the three languages."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botkit import HOME, LANGS, NOON, STATIONS, Clock, Env, button_data, env, is_offer, names_in, north

from bot.app import open_core
from bot.config import Settings
from bot.i18n import translator
from bot.telegram import build_bot, build_dispatcher
from localapi import LocalBotAPI
from storage.users_repo import UserRepository

__all__ = ["env"]


@pytest.mark.parametrize("lang", LANGS)
async def test_start_greets_in_the_users_language_with_a_location_button(env: Env, lang: str) -> None:
    reply = await env.text(lang, "/start")
    assert "👋" in reply.text and "测试" in reply.text
    assert {"zh-hans": "驿站", "zh-hant": "驛站", "en": "stations"}[lang] in reply.text
    keyboard = env.api.reply_keyboard(env.user_id)
    assert keyboard is not None
    button = keyboard["keyboard"][0][0]
    assert button["request_location"] is True
    assert button["text"] == env.tr(lang, "📍 Share my location")
    if lang != "en":
        assert button["text"] != "📍 Share my location"


@pytest.mark.parametrize("lang", LANGS)
async def test_rider_gets_the_nearest_open_stations_in_one_message(env: Env, lang: str) -> None:
    reply = await env.location(lang)
    assert env.tr(lang, "Nearest open stations") in reply.text
    # Open now, nearest first; the temporarily closed and the night-only stations are left out.
    assert [s for s in names_in(reply.text)] == [
        "天河移动营业厅工会驿站",
        "越秀建设银行爱心驿站",
        "第1号驿站",
        "第2号驿站",
        "第3号驿站",
    ]
    assert env.tr(lang, "{metres} m").format(metres=200) in reply.text
    assert env.tr(lang, "🟢 open 24 h") in reply.text
    assert env.tr(lang, "🟢 open until {time}").format(time="20:00") in reply.text
    assert len(button_data(reply, "st:")) == 5
    assert button_data(reply, "r:") and button_data(reply, "f:")
    # One message of results, then (after the first search only) the subscription offer.
    messages = env.api.bot_messages(env.user_id)
    assert [m.message_id for m in messages if not is_offer(m)] == [reply.message_id]
    assert len(messages) == 2 and is_offer(messages[1])


@pytest.mark.parametrize("lang", LANGS)
async def test_more_edits_the_same_message_with_the_next_five(env: Env, lang: str) -> None:
    first = await env.location(lang)
    more = next(d for b in first.buttons if b["text"] == env.tr(lang, "More ▶") for d in [b["callback_data"]])
    second = await env.press(lang, first.message_id, more)
    assert second.message_id == first.message_id and second.edits == 1
    assert names_in(second.text) == ["第4号驿站", "第5号驿站", "第6号驿站", "第7号驿站", "第8号驿站"]
    assert "6. " in second.text
    back = next(b["callback_data"] for b in second.buttons if b["text"] == env.tr(lang, "◀ Back"))
    third = await env.press(lang, first.message_id, back)
    assert names_in(third.text)[0] == "天河移动营业厅工会驿站"


@pytest.mark.parametrize("lang", LANGS)
async def test_include_closed_shows_closed_stations_with_when_they_open(env: Env, lang: str) -> None:
    first = await env.location(lang)
    toggle = next(b["callback_data"] for b in first.buttons if b["text"] == env.tr(lang, "Include closed"))
    shown = await env.press(lang, first.message_id, toggle)
    assert names_in(shown.text)[:2] == ["暂停服务的驿站", "天河移动营业厅工会驿站"]
    assert env.tr(lang, "⛔ temporarily closed") in shown.text


@pytest.mark.parametrize("lang", LANGS)
async def test_amenity_filter_is_toggled_remembered_and_cleared(env: Env, lang: str) -> None:
    first = await env.location(lang)
    open_filter = button_data(first, "f:o")[0]
    menu = await env.press(lang, first.message_id, open_filter)
    heating = next(b["callback_data"] for b in menu.buttons if "f:t:food_heating" in b["callback_data"])
    menu = await env.press(lang, first.message_id, heating)
    assert any(b["text"].startswith("✅") for b in menu.buttons)
    done = button_data(menu, "f:d")[0]
    results = await env.press(lang, first.message_id, done)
    assert names_in(results.text) == ["越秀建设银行爱心驿站"]
    label = env.tr(lang, "Food heating")
    assert env.tr(lang, "Filter: {amenities}").format(amenities=label) in results.text
    # Remembered for the next search.
    again = await env.location(lang)
    assert names_in(again.text) == ["越秀建设银行爱心驿站"]
    async with env.core.sessions() as session:
        user = await UserRepository(session).get(env.user_id)
    assert user is not None and user.amenity_filter == ("food_heating",)
    # One tap clears it and shows everything again.
    menu = await env.press(lang, again.message_id, button_data(again, "f:o")[0])
    cleared = await env.press(lang, again.message_id, button_data(menu, "f:c")[0])
    assert len(names_in(cleared.text)) == 5


@pytest.mark.parametrize("lang", LANGS)
async def test_station_card_has_everything_and_the_way_there(env: Env, lang: str) -> None:
    first = await env.location(lang)
    await env.api.press(env.user_id, first.message_id, button_data(first, "st:")[1], language_code=lang)
    venue = await env.api.wait_for(
        lambda: next((m for m in env.api.bot_messages(env.user_id) if m.venue), None)
    )
    card = next(m for m in env.api.bot_messages(env.user_id) if "GZ0002" in m.text)
    for expected in (
        "越秀建设银行爱心驿站",
        "GZ0002",
        "广州市中山路02号",
        "020-88880002",
        "李华",
        "中国移动",
    ):
        assert expected in card.text
    assert env.tr(lang, "🟢 Open now, until {time}").format(time="20:00") in card.text
    assert env.tr(lang, "Food heating") in card.text
    # Amenities listed the way the language lists things: 、 in Chinese, a comma and a space in English.
    amenities = next(line for line in card.text.splitlines() if line.startswith("🧰"))
    separator = {"zh-hans": "、", "zh-hant": "、", "en": ", "}[lang]
    assert amenities.count(separator) == 1 and (lang != "en" or "、" not in amenities), amenities
    assert env.tr(lang, "Today: {hours}").format(hours="08:00–20:00") in card.text
    assert "geo:" in card.text
    urls = [b["url"] for b in card.buttons if "url" in b]
    assert any("uri.amap.com" in u and "coordinate=wgs84" in u for u in urls)
    assert any("api.map.baidu.com" in u and "coord_type=wgs84" in u for u in urls)
    assert math.isclose(venue.venue["location"]["latitude"], north(500)[0], abs_tol=1e-6)
    assert env.api.callback_answers


@pytest.mark.parametrize("lang", LANGS)
async def test_typed_coordinates_work_and_other_text_gets_help(env: Env, lang: str) -> None:
    reply = await env.text(lang, "23.13, 113.26")
    assert names_in(reply.text)[0] == "天河移动营业厅工会驿站"
    reply = await env.text(lang, "你好")
    assert "23.13, 113.26" in reply.text
    assert env.api.reply_keyboard(env.user_id)["keyboard"][0][0]["request_location"]


async def test_a_venue_is_answered_like_a_location(env: Env) -> None:
    reply = await env.act(env.api.send_venue(env.user_id, HOME[0], HOME[1], "广州塔", "阅江西路222号"))
    assert names_in(reply.text)[0] == "天河移动营业厅工会驿站"


async def test_live_location_refreshes_the_same_message_at_most_every_30_seconds(env: Env) -> None:
    first = await env.location("zh-hans", live_period=900)
    user_message = max(m.message_id for m in env.api.chat(env.user_id) if not m.from_bot)
    await env.api.update_live_location(env.user_id, user_message, *north(950))
    await env.settle()
    assert env.api.message(env.user_id, first.message_id).edits == 0
    env.clock.now = NOON + timedelta(seconds=31)
    mark = env.api.mark()
    await env.api.update_live_location(env.user_id, user_message, *north(1900))
    edited = await env.api.wait_for_change(env.user_id, mark)
    assert edited.message_id == first.message_id and edited.edits == 1
    assert names_in(edited.text)[0] == "第6号驿站"
    assert [m.message_id for m in env.api.bot_messages(env.user_id) if not is_offer(m)] == [first.message_id]


@pytest.mark.parametrize("lang", LANGS)
async def test_far_away_riders_are_told_plainly_without_walking_minutes(env: Env, lang: str) -> None:
    gettext = translator(LANGS[lang]).gettext
    reply = await env.location(lang, 36.0, 80.5)  # about 130 km from Hotan's station
    assert "和田工会驿站" in reply.text
    warning = gettext("⚠️ The nearest one is {distance} away.").split("{distance}")[0]
    assert warning and warning in reply.text
    assert "🚶" not in reply.text
    await env.press(lang, reply.message_id, button_data(reply, "st:")[0])
    # The card comes first, then a venue for the map.
    await env.api.wait_for(lambda: any(m.venue for m in env.api.bot_messages(env.user_id)[-1:]))
    card = next(m for m in reversed(env.api.bot_messages(env.user_id)) if "XJ0001" in m.text)
    assert "📏 " + gettext("{distance} away").split("{distance}")[0] in card.text
    about = (
        gettext("{distance} away, about {minutes} min on foot").split("{distance}")[1].split("{minutes}")[0]
    )
    assert about.strip() and about not in card.text


async def test_beyond_walking_range_the_distance_comes_alone(env: Env) -> None:
    reply = await env.location("en", 37.20, 79.93)  # 10 km north of Hotan's station: not far, not walkable
    assert "和田工会驿站" in reply.text and "10.0 km" in reply.text
    assert "🚶" not in reply.text and "⚠️" not in reply.text
    near = await env.location("en")  # in Guangzhou, a few hundred metres: minutes on foot
    assert "🚶" in near.text and "⚠️" not in near.text


async def test_none_open_nearby_shows_the_nearest_with_when_they_open(env: Env) -> None:
    env.clock.now = NOON.replace(hour=20)  # 04:00 in China: only 24/7 and night stations are open
    reply = await env.location("en")
    menu = await env.press("en", reply.message_id, button_data(reply, "f:o")[0])
    menu = await env.press(
        "en",
        reply.message_id,
        next(b["callback_data"] for b in menu.buttons if "f:t:food_heating" in b["callback_data"]),
    )
    shown = await env.press("en", reply.message_id, button_data(menu, "f:d")[0])
    assert "No station is open near you right now" in shown.text
    assert "越秀建设银行爱心驿站" in shown.text and "opens 08:00" in shown.text


@pytest.mark.parametrize("lang", LANGS)
async def test_language_choice_is_remembered(env: Env, lang: str) -> None:
    menu = await env.text(lang, "/language")
    choice = next(b["callback_data"] for b in menu.buttons if b["callback_data"] == "lang:en")
    await env.press(lang, menu.message_id, choice)
    await env.settle()
    reply = await env.text(lang, "/help")
    assert "How to use" in reply.text
    async with env.core.sessions() as session:
        user = await UserRepository(session).get(env.user_id)
    assert user is not None and user.locale == "en"


async def test_start_up_registers_commands_per_language(env: Env) -> None:
    await env.api.wait_for(lambda: env.api.commands_for("en"))
    assert [c["command"] for c in env.api.commands_for("en")] == [
        "start",
        "help",
        "language",
        "subscribe",
        "unsubscribe",
        "privacy",
        "forget",
    ]
    zh = env.api.commands_for("zh")
    assert zh and zh[0]["description"] == translator("zh_Hans").gettext("Find stations near me")


# -- bad input changes nothing and raises nothing ---------------------------------------------------------


@pytest.mark.parametrize(
    "data,expected",
    [
        ("st:999999:23.13:113.26", "This station is no longer listed."),
        ("r:91.0:113.26:0:0", "This button is out of date. Share your location again."),
        ("f:t:beer:23.13:113.26:0", "This button is out of date. Share your location again."),
        ("f:zz::23.13:113.26:0", "This button is out of date. Share your location again."),
        ("lang:xx", "Unknown language."),
    ],
)
async def test_forged_callbacks_get_a_clear_answer_and_change_nothing(
    env: Env, data: str, expected: str
) -> None:
    first = await env.location("en")
    before = env.api.message(env.user_id, first.message_id)
    query_id = await env.api.press(env.user_id, first.message_id, data, language_code="en", forged=True)
    answer = await env.api.wait_for(lambda: env.api.callback_answers.get(query_id))
    assert answer["text"] == expected
    assert env.api.message(env.user_id, first.message_id).text == before.text
    async with env.core.sessions() as session:
        assert (await UserRepository(session).get(env.user_id)).amenity_filter == ()  # type: ignore[union-attr]


async def test_a_page_out_of_range_says_there_is_no_more(env: Env) -> None:
    first = await env.location("en")
    await env.api.press(
        env.user_id, first.message_id, "r:23.13:113.26:999:0", language_code="en", forged=True
    )
    edited = await env.api.wait_for(lambda: (m := env.api.message(env.user_id, first.message_id)).edits and m)
    assert "No more stations." in edited.text


async def test_a_button_on_someone_elses_message_is_refused(env: Env) -> None:
    first = await env.location("en")
    query_id = await env.api.press(
        env.user_id, first.message_id, "r:23.13:113.26:1:0", language_code="en", chat_id=777, forged=True
    )
    answer = await env.api.wait_for(lambda: env.api.callback_answers.get(query_id))
    assert "out of date" in answer["text"]
    assert env.api.message(env.user_id, first.message_id).edits == 0


@pytest.mark.parametrize("lat,lon", [(91.0, 113.0), (float("nan"), 113.0), (23.0, 181.0)])
async def test_an_impossible_location_gets_a_clear_message(env: Env, lat: float, lon: float) -> None:
    reply = await env.location("en", lat, lon)
    assert reply.text == "That location looks wrong. Please share it again."


async def test_an_empty_venue_and_a_huge_text_and_an_edit_change_nothing(env: Env) -> None:
    assert names_in((await env.act(env.api.send_venue(env.user_id, HOME[0], HOME[1], "", ""))).text)
    reply = await env.text("en", "x" * 4000)
    assert "Share your location" in reply.text and len(reply.text) < 300
    sent = await env.api.send_text(env.user_id, "hello", language_code="en")
    await env.settle()
    count = len(env.api.bot_messages(env.user_id))
    await env.api.edit_text(env.user_id, sent["message_id"], "23.13, 113.26")
    await env.settle()
    assert len(env.api.bot_messages(env.user_id)) == count


async def test_a_location_in_a_group_chat_is_ignored(env: Env) -> None:
    await env.api.send_location(env.user_id, HOME[0], HOME[1], chat_id=-100123, chat_type="supergroup")
    await env.settle()
    assert env.api.bot_messages(-100123) == []


async def test_a_flood_gets_a_polite_refusal_not_a_pile_up(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS[:3])
        await core.reload_index()
        api = LocalBotAPI()
        url = await api.start()
        bot = build_bot(api.token, url)
        dp = build_dispatcher(core, clock=Clock(NOON), throttle_rate=1, throttle_burst=3)
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        try:
            for _ in range(30):
                await api.send_text(9, "23.13, 113.26", language_code="en")
            await api.wait_for(lambda: not api.pending_updates)
            await asyncio.sleep(0.5)
            texts = [m.text for m in api.bot_messages(9)]
            assert 3 <= len(texts) <= 6
            assert texts.count("Too many requests, please wait a moment.") == 1
        finally:
            await dp.stop_polling()
            await task
            await bot.session.close()
            await api.stop()


async def test_an_error_is_logged_with_context_and_the_user_is_told(
    env: Env, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(env.core.search, "find_nearest_open", broken)
    with caplog.at_level(logging.ERROR):
        reply = await env.location("zh-hans")
    assert reply.text == translator("zh_Hans").gettext(
        "Sorry, something went wrong. Please try again in a moment."
    )
    assert any(
        "from user 501" in r.getMessage() and "index exploded" in r.getMessage() for r in caplog.records
    )


async def test_a_failing_start_up_call_does_not_stop_the_bot(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS[:2])
        await core.reload_index()
        api = LocalBotAPI()
        api.fail_next("setMyCommands", 400, "Bad Request: commands are broken", times=10)
        url = await api.start()
        bot = build_bot(api.token, url)
        dp = build_dispatcher(core, clock=Clock(NOON))
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        try:
            await api.send_location(5, HOME[0], HOME[1], language_code="en")
            # The results (the one-time subscription offer follows them).
            await api.wait_for(lambda: any("天河移动营业厅工会驿站" in m.text for m in api.bot_messages(5)))
        finally:
            await dp.stop_polling()
            await task
            await bot.session.close()
            await api.stop()


def test_hand_packed_result_buttons_equal_their_callback_data_classes() -> None:
    """The results keyboard packs its buttons by hand for speed; they must stay what the classes pack."""
    from handlers.callbacks import FilterCb, ResultsCb, StationCb

    lat, lon = 23.13, 113.26
    assert f"st:7:{lat}:{lon}" == StationCb(id=7, lat=lat, lon=lon).pack()
    for page, closed in ((0, 0), (3, 1)):
        assert (
            f"r:{lat}:{lon}:{page}:{closed}"
            == ResultsCb(lat=lat, lon=lon, page=page, closed=bool(closed)).pack()
        )
    assert f"f:o::{lat}:{lon}:1" == FilterCb(action="o", lat=lat, lon=lon, closed=True).pack()
    assert ResultsCb.unpack(f"r:{lat}:{lon}:2:1") == ResultsCb(lat=lat, lon=lon, page=2, closed=True)
