"""Subscriptions and announcements end to end: riders subscribe and unsubscribe, union staff compose,
preview, target, send and schedule announcements, and the broadcaster inside the bot process delivers
them, all through the real dispatcher and HTTP session against the local Bot API server."""

from __future__ import annotations

import asyncio
import sqlite3
import struct
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from botkit import HOME, NOON, Env, button_data, env, is_offer, is_results
from sqlalchemy import inspect

from bot.services.announcements import Audience
from domain.values import GeoPoint
from storage.models import AnnouncementRow, SubscriptionRow

__all__ = ["env"]

STAFF, OTHER_STAFF, VOLUNTEER, ADMIN = 900, 901, 902, 903
# A point of its own, so that its digits can be looked for everywhere in the database.
SPOT = (23.12345, 113.27891)
NOTICE = "夏日送清凉：驿站免费绿豆汤 & 冰水 <6月3日起>"


async def grant_roles(env: Env) -> None:
    await env.core.roles.grant(STAFF, "staff", "4401")
    await env.core.roles.grant(OTHER_STAFF, "staff", "4403")
    await env.core.roles.grant(VOLUNTEER, "volunteer")
    await env.core.roles.grant(ADMIN, "admin")


async def message_after(env: Env, user: int, mark: int, wanted: Callable[[Any], object]) -> Any:
    """The newest bot message in the user's chat created or edited after `mark` that is `wanted`."""

    def found() -> Any:
        fresh = [m for m in env.api.changes_since(user, mark)[0] if m.from_bot and wanted(m)]
        return fresh[-1] if fresh else None

    return await env.api.wait_for(found)


async def say(env: Env, user: int, text: str) -> int:
    mark = env.api.mark()
    await env.api.send_text(user, text, language_code="en")
    return mark


async def tap(env: Env, user: int, message: Any, prefix: str) -> int:
    data = button_data(message, prefix)
    assert data, (prefix, message.buttons)
    mark = env.api.mark()
    await env.api.press(user, message.message_id, data[0], language_code="en")
    return mark


async def forged(env: Env, user: int, data: str) -> str:
    anchor = await env.act(env.api.send_text(user, "/help", language_code="en"), user)
    query = await env.api.press(user, anchor.message_id, data, language_code="en", forged=True)
    answer = await env.api.wait_for(lambda: env.api.callback_answers.get(query))
    return str(answer["text"])


def has_text(text: str) -> Callable[[Any], bool]:
    return lambda m: text in m.text


async def subscribe_near(env: Env, user: int, lat: float = HOME[0], lon: float = HOME[1]) -> Any:
    mark = await say(env, user, "/subscribe")
    await message_after(env, user, mark, lambda m: button_data(m, "sb:p:"))
    return await env.act(env.api.send_location(user, lat, lon, language_code="en"), user)


async def subscribe_province(env: Env, user: int, code: str) -> Any:
    mark = await say(env, user, "/subscribe")
    provinces = await message_after(env, user, mark, lambda m: button_data(m, "sb:p:"))
    data = next(d for d in button_data(provinces, "sb:p:") if d.startswith(f"sb:p:{code}:"))
    mark = env.api.mark()
    await env.api.press(user, provinces.message_id, data, language_code="en")
    return await message_after(env, user, mark, has_text("Subscribed"))


async def compose(
    env: Env, staff: int, text: str = NOTICE, entities: list[dict[str, Any]] | None = None
) -> Any:
    """/announce, the text, no photo: returns (preview, audience question)."""
    mark = await say(env, staff, "/announce")
    await message_after(env, staff, mark, has_text("Send the text of the announcement"))
    mark = env.api.mark()
    await env.api.feed(
        {
            "message": {
                "message_id": 10_000 + len(env.api.chat(staff)),
                "date": 0,
                "chat": {"id": staff, "type": "private", "first_name": "staff"},
                "from": {"id": staff, "is_bot": False, "first_name": "staff", "language_code": "en"},
                "text": text,
                **({"entities": entities} if entities else {}),
            }
        }
    )
    question = await message_after(env, staff, mark, lambda m: button_data(m, "ac:np"))
    mark = await tap(env, staff, question, "ac:np")
    audience = await message_after(env, staff, mark, lambda m: button_data(m, "ac:all"))
    preview = next(m for m in env.api.bot_messages(staff) if m.message_id == audience.message_id - 1)
    return preview, audience


async def choose_all(env: Env, staff: int, audience: Any, region: str) -> Any:
    mark = env.api.mark()
    await env.api.press(staff, audience.message_id, f"ac:all:{region}", language_code="en")
    return await message_after(env, staff, mark, lambda m: button_data(m, "ac:go"))


async def subscription(env: Env, user: int) -> SubscriptionRow | None:
    async with env.core.sessions() as session:
        return await session.get(SubscriptionRow, user)


def announcements_to(env: Env, user: int) -> list[Any]:
    return [m for m in env.api.bot_messages(user) if button_data(m, "unsub")]


# -- riders ------------------------------------------------------------------------------------------------
async def test_subscribing_by_location_keeps_only_a_coarse_cell(env: Env, tmp_path: Any) -> None:
    mark = await say(env, 501, "/subscribe")
    prompt = await message_after(env, 501, mark, has_text("about 5 km"))
    assert "never the location itself" in prompt.text
    assert env.api.reply_keyboard(501)["keyboard"][0][0]["request_location"]
    provinces = await message_after(env, 501, mark, lambda m: button_data(m, "sb:p:"))
    assert [b["text"] for b in provinces.buttons] == ["广东 44"]  # the provinces that have stations
    done = await env.act(env.api.send_location(501, *SPOT, language_code="en"), 501)
    assert done.text.startswith("🔔 Subscribed.") and "not the location itself" in done.text
    row = await subscription(env, 501)
    assert row is not None and row.active and len(row.cell) == 5 and row.region == "440104"
    assert {c.key for c in inspect(SubscriptionRow).columns} == {
        "user_id",
        "active",
        "cell",
        "region",
        "created_at",
        "updated_at",
    }
    # The shared point is nowhere: not in any table, not in the conversation state.
    with sqlite3.connect(tmp_path / "bot.db") as db:
        dump = "\n".join(db.iterdump())
    for digits in ("23.1234", "113.2789", "23.12345", "113.27891"):
        assert digits not in dump
    key = StorageKey(bot_id=42, chat_id=501, user_id=501)
    assert await env.dp.storage.get_data(key) == {} and await env.dp.storage.get_state(key) is None
    # After subscribing, a location is a search again.
    assert is_results(await env.act(env.api.send_location(501, *HOME, language_code="en"), 501))


async def test_subscribing_to_a_province(env: Env) -> None:
    done = await subscribe_province(env, 502, "44")
    assert "广东 (44)" in done.text and not done.buttons
    row = await subscription(env, 502)
    assert row is not None and row.active and (row.cell, row.region) == ("", "44")


async def test_the_first_search_offers_a_subscription_once_and_only_a_tap_subscribes(env: Env) -> None:
    results = await env.location("en")
    offers = [m for m in env.api.bot_messages(env.user_id) if is_offer(m)]
    assert len(offers) == 1 and offers[0].message_id > results.message_id
    assert "about 5 km" in offers[0].text and "never the location itself" in offers[0].text
    assert len(offers[0].buttons) == 2
    assert await subscription(env, env.user_id) is None  # nothing without consent
    again = await env.location("en")
    assert is_results(again)
    await env.settle()
    assert len([m for m in env.api.bot_messages(env.user_id) if is_offer(m)]) == 1
    mark = await tap(env, env.user_id, offers[0], "sb:here:")
    done = await message_after(env, env.user_id, mark, has_text("Subscribed"))
    assert done.message_id == offers[0].message_id and not done.buttons
    row = await subscription(env, env.user_id)
    assert row is not None and row.active and len(row.cell) == 5


async def test_no_thanks_subscribes_nobody(env: Env) -> None:
    await env.act(env.api.send_location(502, *HOME, language_code="en"), 502)
    offer = next(m for m in env.api.bot_messages(502) if is_offer(m))
    mark = await tap(env, 502, offer, "sb:no")
    done = await message_after(env, 502, mark, has_text("/subscribe"))
    assert not done.buttons
    assert await subscription(env, 502) is None


async def test_unsubscribe_by_command_and_by_button_even_when_never_subscribed(env: Env) -> None:
    await subscribe_province(env, 503, "44")
    reply = await env.act(env.api.send_text(503, "/unsubscribe", language_code="en"), 503)
    assert reply.text.startswith("🔕 Unsubscribed")
    assert not (await subscription(env, 503)).active  # type: ignore[union-attr]
    reply = await env.act(env.api.send_text(503, "/unsubscribe", language_code="en"), 503)
    assert reply.text == "You are not subscribed."
    assert await forged(env, 504, "unsub") == "You are not subscribed."


# -- staff: composing and sending --------------------------------------------------------------------------
async def test_staff_compose_preview_and_send_now_and_subscribers_get_exactly_the_preview(env: Env) -> None:
    await grant_roles(env)
    for rider in (501, 502):
        await subscribe_near(env, rider)
    await subscribe_province(env, 503, "44")  # Guangdong, but not known to be in Guangzhou
    await env.core.subscriptions.subscribe_region(504, "11", NOON)  # Beijing
    bold = [{"type": "bold", "offset": 0, "length": 4}]
    preview, audience = await compose(env, STAFF, NOTICE, bold)
    assert preview.text == NOTICE and preview.html.startswith("<b>夏日送清</b>")
    assert [(b["text"], b["callback_data"]) for b in preview.buttons] == [("🔕 Unsubscribe", "unsub")]
    size = await choose_all(env, STAFF, audience, "4401")
    assert "2 subscribers will get it." in size.text
    mark = await tap(env, STAFF, size, "ac:go")
    progress = await message_after(env, STAFF, mark, has_text("📣"))
    for rider in (501, 502):
        await env.api.wait_for(lambda r=rider: announcements_to(env, r))
        [got] = announcements_to(env, rider)
        assert (got.text, got.html, got.buttons) == (preview.text, preview.html, preview.buttons)
    final = await env.api.wait_for(
        lambda: (m := env.api.message(STAFF, progress.message_id)) and "finished" in m.text and m
    )
    assert final.text.startswith("📣 Announcement #1: finished")
    assert "sent 2 · failed 0 · blocked 0 · left 0 of 2" in final.text
    await env.settle()
    assert not announcements_to(env, 503) and not announcements_to(env, 504)
    # The button on the announcement unsubscribes.
    got = announcements_to(env, 501)[0]
    query = await env.api.press(501, got.message_id, "unsub", language_code="en")
    answer = await env.api.wait_for(lambda: env.api.callback_answers.get(query))
    assert answer["text"].startswith("🔕 Unsubscribed")
    assert not (await subscription(env, 501)).active  # type: ignore[union-attr]
    view = await env.core.announcements.get(1, await env.core.roles.access(STAFF))
    assert view.status == "done" and view.counts.sent == 2


async def test_a_near_station_audience_with_a_photo(env: Env) -> None:
    await grant_roles(env)
    await subscribe_near(env, 501)
    far = (HOME[0] + 0.3, HOME[1])  # about 33 km north, still Guangzhou's nearest station's region
    await subscribe_near(env, 502, *far)
    mark = await say(env, STAFF, "/announce")
    await message_after(env, STAFF, mark, has_text("Send the text"))
    mark = await say(env, STAFF, "x" * 1100)
    await message_after(env, STAFF, mark, lambda m: button_data(m, "ac:np"))
    photo = await env.api.invoke(
        "sendPhoto", {"chat_id": STAFF, "photo": "attach://p"}, {"p": ("p.png", _png())}
    )
    staff_photo = {
        "message_id": 20_000,
        "date": 0,
        "chat": {"id": STAFF, "type": "private", "first_name": "staff"},
        "from": {"id": STAFF, "is_bot": False, "first_name": "staff", "language_code": "en"},
        "photo": photo["photo"],
    }
    mark = env.api.mark()
    await env.api.feed({"message": staff_photo})
    refused = await message_after(env, STAFF, mark, has_text("at most 1024"))
    assert "1100" in refused.text
    # Start again with a short text and the photo.
    mark = await say(env, STAFF, "/announce")
    await message_after(env, STAFF, mark, has_text("Send the text"))
    mark = await say(env, STAFF, "法律援助日：本周六上午")
    await message_after(env, STAFF, mark, lambda m: button_data(m, "ac:np"))
    mark = env.api.mark()
    await env.api.feed({"message": {**staff_photo, "message_id": 20_001}})
    audience = await message_after(env, STAFF, mark, lambda m: button_data(m, "ac:all"))
    preview = env.api.message(STAFF, audience.message_id - 1)
    assert preview is not None and preview.photo and preview.text == "法律援助日：本周六上午"
    assert button_data(preview, "unsub")
    mark = await tap(env, STAFF, audience, "ac:stn")
    await message_after(env, STAFF, mark, has_text("code of the station"))
    mark = await say(env, STAFF, "NOPE")
    await message_after(env, STAFF, mark, has_text("No station with the code NOPE"))
    mark = await say(env, STAFF, "GZ0001")
    radius = await message_after(env, STAFF, mark, lambda m: button_data(m, "ac:km"))
    mark = await tap(env, STAFF, radius, "ac:km:5")
    size = await message_after(env, STAFF, mark, lambda m: button_data(m, "ac:go"))
    assert "1 subscribers will get it." in size.text and "within 5 km" in size.text
    await tap(env, STAFF, size, "ac:go")
    await env.api.wait_for(lambda: announcements_to(env, 501))
    [got] = announcements_to(env, 501)
    assert got.photo and got.text == preview.text
    await env.settle()
    assert not announcements_to(env, 502)


async def test_scheduled_announcement_goes_out_at_its_time(env: Env) -> None:
    await grant_roles(env)
    await subscribe_near(env, 501)
    _, audience = await compose(env, STAFF, "明天驿站开放新址")
    size = await choose_all(env, STAFF, audience, "4401")
    mark = await tap(env, STAFF, size, "ac:at")
    await message_after(env, STAFF, mark, has_text("YYYY-MM-DD HH:MM"))
    mark = await say(env, STAFF, "2025-06-03 11:00")  # NOON is 12:00 in Beijing
    await message_after(env, STAFF, mark, has_text("has passed"))
    mark = await say(env, STAFF, "tomorrow")
    await message_after(env, STAFF, mark, has_text("YYYY-MM-DD HH:MM"))
    mark = await say(env, STAFF, "2025-06-03 13:30")
    scheduled = await message_after(env, STAFF, mark, has_text("⏰"))
    assert "2025-06-03 13:30" in scheduled.text and "1 subscribers" in scheduled.text
    await asyncio.sleep(1.5)  # the broadcaster polls every second
    assert not announcements_to(env, 501)
    listing = await env.act(env.api.send_text(STAFF, "/announcements", language_code="en"), STAFF)
    assert "#1" in listing.text and "scheduled for 2025-06-03 13:30" in listing.text
    env.clock.now = NOON + timedelta(hours=1, minutes=31)
    await env.api.wait_for(lambda: announcements_to(env, 501))
    assert announcements_to(env, 501)[0].text == "明天驿站开放新址"
    final = await env.api.wait_for(
        lambda: (m := env.api.message(STAFF, scheduled.message_id)) and "finished" in m.text and m
    )
    assert "sent 1" in final.text


# -- who may do what ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("intruder", [501, VOLUNTEER])
async def test_riders_and_volunteers_cannot_announce(env: Env, intruder: int) -> None:
    await grant_roles(env)
    for command in ("/announce", "/announcements"):
        reply = await env.act(env.api.send_text(intruder, command, language_code="en"), intruder)
        assert reply.text == "This command is for union staff."
    # Nor can they jump into the composer with buttons.
    assert await forged(env, intruder, "ac:go:") == "This button is out of date."
    assert await forged(env, intruder, "ac:all:") == "This button is out of date."


async def test_staff_cannot_target_outside_their_region(env: Env) -> None:
    await grant_roles(env)
    await subscribe_province(env, 503, "44")
    _, audience = await compose(env, STAFF)
    assert button_data(audience, "ac:all:") == ["ac:all:4401"]
    mark = env.api.mark()
    await env.api.press(STAFF, audience.message_id, "ac:all:44", language_code="en", forged=True)
    refused = await message_after(env, STAFF, mark, has_text("only address subscribers in your region"))
    assert "4401" in refused.text
    mark = await tap(env, STAFF, refused, "ac:sub")
    await message_after(env, STAFF, mark, has_text("adcode prefix"))
    mark = await say(env, STAFF, "4403")
    await message_after(env, STAFF, mark, has_text("only address subscribers in your region"))
    mark = env.api.mark()
    await env.api.press(STAFF, audience.message_id, "ac:stn:", language_code="en")
    await message_after(env, STAFF, mark, has_text("code of the station"))
    mark = await say(env, STAFF, "XJ0001")  # in Xinjiang
    radius = await message_after(env, STAFF, mark, lambda m: button_data(m, "ac:km"))
    mark = await tap(env, STAFF, radius, "ac:km:10")
    await message_after(env, STAFF, mark, has_text("only address subscribers in your region"))
    mark = await say(env, STAFF, "/cancel")
    await message_after(env, STAFF, mark, has_text("not sent"))
    async with env.core.sessions() as session:
        assert await session.get(AnnouncementRow, 1) is None
    # An admin addresses all of China.
    _, audience = await compose(env, ADMIN)
    size = await choose_all(env, ADMIN, audience, "")
    assert "all of China" in size.text and "1 subscribers" in size.text


async def test_announcements_list_and_forged_management_buttons_are_refused(env: Env) -> None:
    await grant_roles(env)
    await env.core.subscriptions.subscribe_near(501, GeoPoint(*HOME), NOON)
    view = await env.core.announcements.create(
        await env.core.roles.access(STAFF),
        "防暑降温讲座",
        Audience("4401"),
        NOON,
        scheduled_at=NOON + timedelta(days=1),
    )
    for intruder in (501, VOLUNTEER, OTHER_STAFF):
        for action in ("p", "x", "r"):
            assert await forged(env, intruder, f"an:{action}:{view.id}") == "Not allowed.", (intruder, action)
    assert await forged(env, STAFF, "an:x:999") == "Not allowed."
    access = await env.core.roles.access(STAFF)
    assert (await env.core.announcements.get(view.id, access)).status == "scheduled"
    other = await env.act(env.api.send_text(OTHER_STAFF, "/announcements", language_code="en"), OTHER_STAFF)
    assert "No announcements" in other.text
    listing = await env.act(env.api.send_text(STAFF, "/announcements", language_code="en"), STAFF)
    assert "#1" in listing.text and "scheduled" in listing.text and "left 1" in listing.text
    assert sorted(button_data(listing, "an:")) == ["an:p:1", "an:x:1"]
    mark = await tap(env, STAFF, listing, "an:p:1")
    paused = await message_after(env, STAFF, mark, lambda m: button_data(m, "an:r:1"))
    assert "paused" in paused.text
    mark = await tap(env, STAFF, paused, "an:x:1")
    cancelled = await message_after(env, STAFF, mark, has_text("cancelled"))
    assert not cancelled.buttons
    assert (await env.core.announcements.get(view.id, access)).status == "cancelled"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\xff\x80\x00" * 4 for _ in range(4)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
