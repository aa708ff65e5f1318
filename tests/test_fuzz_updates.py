"""10,000 generated updates through the real dispatcher and HTTP session against the local Bot API server.

Every kind of update the bot receives, from riders, staff, an admin, unknown users and group chats: random
and mutated texts, commands with random arguments, entities, photos with captions, stickers and contacts,
extreme, NaN and out-of-range locations, venues, live locations and their edits, edited texts, taps on the
buttons the bot really sent, and forged callback data (mutations of every `CallbackData` class, random
strings). The seed is fixed, and the updates of one batch come from different chats, so a run is repeatable.

What must hold:
- no handler fails: no error is logged for an update and nobody is told "something went wrong";
- every Bot API call is one Telegram accepts: texts within 4,096 characters and captions within 1,024,
  HTML that Telegram's parser takes (checked with a strict parser of Telegram's own tags), callback data
  within 64 bytes, callback answers within 200 characters; and the local server refused none;
- every callback query is answered;
- forged buttons change nothing: a phase of forged callbacks from riders and strangers leaves stations,
  roles, subscriptions, reports, ratings, announcements and the audit log exactly as they were.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters.callback_data import CallbackData
from botkit import HOME, NOON, STATIONS, Clock, station
from sqlalchemy import text

import handlers.callbacks as callbacks
from bot.app import Core, open_core
from bot.config import Settings
from bot.telegram import build_bot, build_dispatcher
from domain.telegram_html import utf16_len
from localapi import LocalBotAPI

SEED = 20261204
TOTAL = 10_000
FORGED = 1_500  # of TOTAL, in the second phase
BATCH = 150
STAFF, ADMIN = 900, 903
RIDERS = list(range(10_001, 10_301))
GROUPS = [-100_001, -100_002, -100_003]
SORRY = ("Sorry, something went wrong", "抱歉，出了点问题", "抱歉，出了點問題")
LANGUAGES = ["zh-hans", "zh-hant", "en", "zh-TW", "zh", "en-US", "fr", "xx", "", "zh-HK", "😀", "a" * 40]

# Stations whose own data is hostile: markup, entities, quotes and comments in every text field.
HOSTILE = [
    station(
        "GZ<b>1", "A&B <i>x</i> <script>", 150, address="<广州> & “街”", manager="</b>李", host="<中国&移动>"
    ),
    station(
        "GZ&2",
        "驿站 &amp; <u>",
        300,
        opening_hours='Mo-Su 08:00-20:00 "<b>call</b> & ask"',
        phone="<020>",
    ),
    station("GZ'3", "\"quoted\" 'name' >", 450, opening_hours="", amenities=("toilet", "wifi")),
]


# -- a strict checker of Telegram's HTML --------------------------------------------------------------------
_TAGS = {
    "b": set(),
    "strong": set(),
    "i": set(),
    "em": set(),
    "u": set(),
    "ins": set(),
    "s": set(),
    "strike": set(),
    "del": set(),
    "tg-spoiler": set(),
    "span": {"class"},
    "a": {"href"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
    "tg-emoji": {"emoji-id"},
}
_TAG = re.compile(r"<(/?)([a-z][a-z-]*)((?:\s+[a-z-]+(?:=\"[^\"<>]*\"|='[^'<>]*')?)*)\s*>")
_ATTR = re.compile(r"([a-z-]+)(?:=(?:\"[^\"]*\"|'[^']*'))?")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")


def html_problem(value: str) -> str | None:
    """Why Telegram would refuse `value` with parse_mode HTML, or None. Stricter than Telegram where
    Telegram is lenient (a bare `>`), so that the bot never relies on leniency."""
    open_tags: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "<":
            match = _TAG.match(value, i)
            if match is None:
                return f"a bare '<' at {i}: {value[i : i + 20]!r}"
            closing, name, attrs = match.groups()
            if name not in _TAGS:
                return f"tag <{name}> is not one of Telegram's"
            if closing:
                if not open_tags or open_tags[-1] != name:
                    return f"</{name}> closes {open_tags[-1] if open_tags else 'nothing'}"
                open_tags.pop()
            else:
                for attr in _ATTR.findall(attrs):
                    if attr not in _TAGS[name]:
                        return f"<{name}> takes no attribute {attr}"
                if name == "span" and 'class="tg-spoiler"' not in attrs:
                    return "<span> is only a spoiler"
                open_tags.append(name)
            i = match.end()
        elif char == "&":
            match = _ENTITY.match(value, i)
            if match is None:
                return f"a bare '&' at {i}: {value[i : i + 20]!r}"
            i = match.end()
        elif char == ">":
            return f"a bare '>' at {i}: {value[max(0, i - 20) : i + 1]!r}"
        else:
            i += 1
    if open_tags:
        return f"<{open_tags[-1]}> is never closed"
    return None


@pytest.mark.parametrize(
    "value,ok",
    [
        ("<b>a &amp; b</b> <i>x</i>", True),
        ('<a href="https://x.cn/?a=1&amp;b=2">x</a> <code>1 &lt; 2</code>', True),
        ('<span class="tg-spoiler">s</span> <tg-spoiler>t</tg-spoiler>', True),
        ("<br>", False),
        ("a & b", False),
        ("<b>x", False),
        ("<b><i>x</b></i>", False),
        ("1 > 0", False),
        ("<script>", False),
        ('<b class="x">y</b>', False),
    ],
)
def test_the_html_checker_takes_telegrams_html_only(value: str, ok: bool) -> None:
    assert (html_problem(value) is None) is ok, html_problem(value)


# -- generators ---------------------------------------------------------------------------------------------
_ALPHABETS = [
    string.ascii_letters + string.digits + " ",
    "<>&\"'/;:=#%{}[]\\`~!?.,|+-*@$^()_",
    "驿站工会广州深圳北京上海暂停服务天河移动",
    "²³¹٤٥٦０１２３①②",
    "\u200b\u200e\u202e\ufeff\u00a0\t\n\r",
    "😀🚴‍♂️🏳️‍🌈👨‍👩‍👧",
]
_HOSTILE_TEXTS = [
    "<br>",
    "<b>",
    "</i>",
    "&",
    "&amp;",
    "&#0;",
    "<script>alert(1)</script>",
    "A&B <i>x",
    "${jndi:ldap://x}",
    "'; DROP TABLE stations; --",
    "=cmd|' /C calc'!A0",
    "23.13, 113.26",
    "23.13，113.26",
    "(91, 181)",
    "nan, nan",
    "1e309, 1e309",
    "-0.0, -0.0",
    "Mo-Fr 08:00-18:00",
    "24/7",
    "Mo-Xx 25:00",
    "PH +1 day",
    '"by appointment"',
    "020-88886666",
    "4401",
    "²²",
    "2025-07-01 09:00",
    "9999-99-99 99:99",
    "5",
    "0",
    "-1",
    "1e9",
    "inf",
    "\x00",
]
_COMMANDS = [
    "start",
    "help",
    "language",
    "subscribe",
    "unsubscribe",
    "reports",
    "station",
    "stale",
    "history",
    "grant",
    "revoke",
    "announce",
    "announcements",
    "cancel",
    "privacy",
    "forget",
    "start@yizhan_bot",
    "help@other_bot",
    "nosuchcommand",
    "Start",
    "",
]
_WEIRD_NUMBERS = [
    "99999999999999999999",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "-1",
    "0",
    "00",
    "1_000",
    " 1",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "²",
    "٤٤",
    "０",
    "",
    "x",
]


def random_text(rng: random.Random, max_length: int = 200) -> str:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(_HOSTILE_TEXTS)
    if kind < 0.35:
        return rng.choice(string.ascii_letters) * rng.choice([64, 65, 4096])
    alphabet = "".join(rng.sample(_ALPHABETS, rng.randint(1, 3)))
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_length)))


def random_entities(rng: random.Random, value: str) -> list[dict[str, Any]]:
    """Entities Telegram could attach: within the text, on whole characters (UTF-16 offsets), not
    overlapping."""
    entities: list[dict[str, Any]] = []
    start = 0
    while start < len(value) and len(entities) < 4 and rng.random() < 0.7:
        start = rng.randint(start, len(value) - 1)
        end = rng.randint(start + 1, len(value))
        kind = rng.choice(
            ["bold", "italic", "code", "underline", "strikethrough", "spoiler", "text_link", "url"]
        )
        entity: dict[str, Any] = {
            "type": kind,
            "offset": utf16_len(value[:start]),
            "length": utf16_len(value[start:end]),
        }
        if kind == "text_link":
            entity["url"] = rng.choice(["https://example.com/?a=1&b=<2>", "https://t.me/x", "tg://user?id=1"])
        entities.append(entity)
        start = end
    return entities


def random_coordinate(rng: random.Random) -> tuple[float, float]:
    kind = rng.random()
    if kind < 0.5:
        return HOME[0] + rng.uniform(-0.05, 0.05), HOME[1] + rng.uniform(-0.05, 0.05)
    if kind < 0.65:
        return rng.uniform(-90, 90), rng.uniform(-180, 180)
    extremes = [
        90.0,
        -90.0,
        180.0,
        -180.0,
        0.0,
        -0.0,
        90.000001,
        180.000001,
        1e308,
        -1e308,
        math.inf,
        math.nan,
    ]
    return rng.choice(extremes), rng.choice(extremes)


def _field_values(rng: random.Random, name: str, real: dict[str, list[int]]) -> str:
    kind = rng.random()
    if kind < 0.4:
        return rng.choice(_WEIRD_NUMBERS)
    if kind < 0.6 and real.get(name):
        return str(rng.choice(real[name]))
    if kind < 0.8:
        return "".join(rng.choice(rng.choice(_ALPHABETS)) for _ in range(rng.randint(0, 12)))
    return rng.choice(["0", "1", "p", "s", "ok", "no", "v", "cl", "hist", "44", "99", "x", "here", "go"])


def _example_callbacks(real: dict[str, list[int]]) -> list[CallbackData]:
    """One packed example of every CallbackData class, with ids that exist."""
    station_id = (real.get("station") or [1])[0]
    case = (real.get("case") or [1])[0]
    return [
        callbacks.ResultsCb(lat=HOME[0], lon=HOME[1], page=1),
        callbacks.StationCb(id=station_id, lat=HOME[0], lon=HOME[1]),
        callbacks.CallCb(station=station_id),
        callbacks.FilterCb(action="t", key="toilet", lat=HOME[0], lon=HOME[1]),
        callbacks.LanguageCb(locale="en"),
        callbacks.ReportCb(action="s", station=station_id),
        callbacks.RateCb(station=station_id, stars=4),
        callbacks.ModCb(action="v", case=case),
        callbacks.StaffCb(action="ver", station=station_id),
        callbacks.SubscribeCb(action="p", region="44"),
        callbacks.UnsubscribeCb(),
        callbacks.ComposeCb(action="all", value="44"),
        callbacks.AnnouncementCb(action="p", id=(real.get("id") or [1])[0]),
        callbacks.ForgetCb(action="no"),
    ]


def all_callback_classes() -> set[type[CallbackData]]:
    return {
        value
        for value in vars(callbacks).values()
        if isinstance(value, type) and issubclass(value, CallbackData) and value is not CallbackData
    }


def mutate_callback(rng: random.Random, real: dict[str, list[int]], pool: list[str]) -> str:
    """Callback data a modified client could send: a real button's data or an example of any class,
    with parts replaced, dropped or added, or random characters; at most 64 bytes like any button's."""
    kind = rng.random()
    if kind < 0.1:
        data = "".join(rng.choice(rng.choice(_ALPHABETS)) for _ in range(rng.randint(1, 64)))
    else:
        if pool and rng.random() < 0.5:
            base = rng.choice(pool)
        else:
            base = rng.choice(_example_callbacks(real)).pack()
        parts = base.split(":")
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            if op < 0.7 and len(parts) > 1:
                index = rng.randrange(1, len(parts))
                parts[index] = _field_values(rng, "", real)
            elif op < 0.8 and len(parts) > 1:
                parts.pop(rng.randrange(1, len(parts)))
            elif op < 0.9:
                parts.append(_field_values(rng, "", real))
            else:
                parts[0] = rng.choice(
                    ["r", "st", "f", "lang", "rp", "rt", "md", "sf", "sb", "unsub", "ac", "an", "fg"]
                )
        data = ":".join(parts)
    while len(data.encode()) > 64:
        data = data[:-1]
    return data or "x"


# -- the harness --------------------------------------------------------------------------------------------
class Failures(logging.Handler):
    """Every error logged while updates are handled."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> str:
        seen: dict[str, str] = {}
        for record in self.records:
            exc = record.exc_info[1] if record.exc_info else None
            key = f"{type(exc).__name__}: {exc}" if exc else record.getMessage()
            seen.setdefault(key[:300], record.getMessage()[:300])
        return "\n".join(f"- {key}" for key in list(seen)[:20])


@dataclass
class Chats:
    """What the test knows of every chat: its messages' ids, which are the bot's, their buttons."""

    bot_buttons: dict[int, dict[int, list[str]]] = field(default_factory=dict)
    user_texts: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    live: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    any_bot_message: dict[int, list[int]] = field(default_factory=dict)

    def absorb(self, api: LocalBotAPI, chat_id: int, mark: int) -> None:
        changed, deleted = api.changes_since(chat_id, mark)
        buttons = self.bot_buttons.setdefault(chat_id, {})
        for message_id in deleted:
            buttons.pop(message_id, None)
        for message in changed:
            if message.from_bot:
                data = [b["callback_data"] for b in message.buttons if "callback_data" in b]
                if data:
                    buttons[message.message_id] = data
                else:
                    buttons.pop(message.message_id, None)
                known = self.any_bot_message.setdefault(chat_id, [])
                if message.message_id not in known:
                    known.append(message.message_id)
            elif message.edits == 0:
                sender = message.raw["from"]["id"]
                if "text" in message.raw:
                    self.user_texts.setdefault(chat_id, []).append((sender, message.message_id))
                location = message.raw.get("location")
                if location and "live_period" in location:
                    self.live.setdefault(chat_id, []).append((sender, message.message_id))


def own_setting(data: str, real: dict[str, list[int]]) -> bool:
    """Whether a forged button does what any rider may do for themselves with it: rate a station,
    subscribe to a province the bot offers or to an area (the change is theirs to make)."""
    for cls in (callbacks.RateCb, callbacks.SubscribeCb):
        try:
            cb = cls.unpack(data)
        except (TypeError, ValueError):
            continue
        if isinstance(cb, callbacks.RateCb):
            return 1 <= cb.stars <= 5
        return cb.action == "here" or (cb.action == "p" and cb.region == "44")
    return False


@dataclass
class Fuzz:
    api: LocalBotAPI
    core: Core
    dp: Dispatcher
    rng: random.Random
    real: dict[str, list[int]]
    failures: Failures
    chats: Chats = field(default_factory=Chats)
    queries: list[str] = field(default_factory=list)
    handled: int = 0
    fed: int = 0
    next_stranger: int = 5_000_000
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)

    def button_pool(self) -> list[str]:
        return [d for chat in self.chats.bot_buttons.values() for data in chat.values() for d in data]

    def user_kw(self, user: int) -> dict[str, Any]:
        """A user's language and name: their own, now and then a new one (as when they change them)."""
        rng = self.rng
        if user not in self.profiles or rng.random() < 0.02:
            language = rng.choice(LANGUAGES) if rng.random() < 0.3 else rng.choice(LANGUAGES[:3])
            name = (random_text(rng, 30)[:64].strip() or "x") if rng.random() < 0.3 else "骑手"
            self.profiles[user] = {"language_code": language, "first_name": name}
        return self.profiles[user]

    def stranger(self) -> int:
        self.next_stranger += self.rng.randint(1, 10**6)
        return self.next_stranger

    async def one(self, user: int, chat_id: int | None, *, forged_only: bool = False) -> None:
        """One update from `user` in `chat_id` (None: their private chat)."""
        self.fed += 1
        rng, api = self.rng, self.api
        kw = self.user_kw(user)
        group = {"chat_id": chat_id, "chat_type": rng.choice(["group", "supergroup"])} if chat_id else {}
        target = chat_id if chat_id is not None else user
        if forged_only:
            await self.press(user, target, chat_id, forged=True, kw=kw, group=group)
            return
        roll = rng.random()
        if roll < 0.22:
            await self.press(user, target, chat_id, forged=rng.random() < 0.35, kw=kw, group=group)
        elif roll < 0.36:
            await api.send_text(user, random_text(rng), **kw, **group)
        elif roll < 0.50:
            command = rng.choice(_COMMANDS)
            words = [random_text(rng, 20), rng.choice(_WEIRD_NUMBERS), "staff", "44", "GZ0001", "GZ<b>1"]
            args = " ".join(rng.choice(words) for _ in range(rng.randint(0, 3)))
            await api.send_command(user, f"/{command} {args}".strip(), **kw, **group)
        elif roll < 0.64:
            lat, lon = random_coordinate(rng)
            live = rng.choice([None, None, 60, 900, 86400, 0x7FFFFFFF])
            accuracy = rng.choice([None, 0.0, 1500.0, -1.0])
            await api.send_location(
                user, lat, lon, live_period=live, horizontal_accuracy=accuracy, **kw, **group
            )
        elif roll < 0.70:
            lat, lon = random_coordinate(rng)
            title, address = random_text(rng, 80)[:80] or "x", random_text(rng, 80)[:80]
            await api.send_venue(user, lat, lon, title, address, **kw, **group)
        elif roll < 0.76:
            value = random_text(rng, 300)
            content: dict[str, Any] = {"text": value, "entities": random_entities(rng, value)}
            await api.send_content(user, content, **kw, **group)
        elif roll < 0.82:
            caption = random_text(rng, 1024)[:1024]
            size = rng.choice([1, 90, 1280])
            photo = {
                "file_id": f"photo-{rng.randrange(10**9)}",
                "file_unique_id": "u",
                "width": size,
                "height": size,
            }
            content = {
                "photo": [photo],
                "caption": caption,
                "caption_entities": random_entities(rng, caption),
            }
            await api.send_content(user, content, **kw, **group)
        elif roll < 0.85:
            await api.send_content(user, rng.choice(OTHER_CONTENT), **kw, **group)
        elif roll < 0.92:
            texts = [m for sender, m in self.chats.user_texts.get(target, []) if sender == user]
            if texts:
                await api.edit_text(user, rng.choice(texts[-20:]), random_text(rng), chat_id=chat_id)
            else:
                await api.send_text(user, random_text(rng), **kw, **group)
        else:
            lives = [m for sender, m in self.chats.live.get(target, []) if sender == user]
            if lives:
                lat, lon = random_coordinate(rng)
                await api.update_live_location(user, rng.choice(lives[-5:]), lat, lon, chat_id=chat_id)
            else:
                lat, lon = random_coordinate(rng)
                await api.send_location(user, lat, lon, live_period=900, **kw, **group)

    async def press(
        self,
        user: int,
        target: int,
        chat_id: int | None,
        *,
        forged: bool,
        kw: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        """A tap on a button the bot sent in this chat, or forged data on one of the bot's messages."""
        rng, api = self.rng, self.api
        buttons = self.chats.bot_buttons.get(target, {})
        bot_messages = self.chats.any_bot_message.get(target, [])
        if not forged and buttons:
            message_id = rng.choice(list(buttons)[-6:])
            data = rng.choice(buttons[message_id])
        elif bot_messages:
            message_id = rng.choice(bot_messages[-10:])
            data = mutate_callback(rng, self.real, self.button_pool())
            while forged and not group and self.forged_only and own_setting(data, self.real):
                data = mutate_callback(rng, self.real, self.button_pool())
        else:
            await api.send_text(user, "/help", **kw, **group)
            return
        query = await api.press(user, message_id, data, chat_id=chat_id, forged=True, **kw)
        self.queries.append(query)

    forged_only: bool = False

    async def run(self, count: int, users: list[int], forged_only: bool = False) -> None:
        """`count` updates in batches; the updates of one batch come from different chats."""
        self.forged_only = forged_only
        sent = 0
        while sent < count:
            chosen = self.rng.sample(users, min(BATCH, count - sent, len(users)))
            senders: list[tuple[int, int | None]] = []
            groups = list(GROUPS)
            for user in chosen:
                if not forged_only and user not in (STAFF, ADMIN) and groups and self.rng.random() < 0.08:
                    senders.append((user, groups.pop()))
                elif not forged_only and self.rng.random() < 0.05:
                    senders.append((self.stranger(), None))
                else:
                    senders.append((user, None))
            await self.feed(senders, forged_only)
            sent += len(senders)

    async def feed(self, senders: list[tuple[int, int | None]], forged_only: bool = False) -> None:
        marks = {(chat if chat is not None else user): self.api.mark() for user, chat in senders}
        target = self.handled + len(senders)
        for user, chat in senders:
            await self.one(user, chat, forged_only=forged_only)
        await self.api.wait_for(lambda: self.handled >= target, timeout=60)
        for chat_id, mark in marks.items():
            self.chats.absorb(self.api, chat_id, mark)


OTHER_CONTENT: list[dict[str, Any]] = [
    {
        "sticker": {
            "file_id": "s",
            "file_unique_id": "s",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        }
    },
    {"contact": {"phone_number": "<+86 138>", "first_name": "A&B <i>"}},
    {"dice": {"emoji": "🎲", "value": 6}},
    {"document": {"file_id": "d", "file_unique_id": "d", "file_name": "<x>.xlsx"}},
]


async def snapshot(core: Core) -> dict[str, list[tuple[Any, ...]]]:
    # Not reports: any rider may report a station, forged button or not.
    tables = ["stations", "roles", "subscriptions", "ratings", "audit_log", "announcements", "deliveries"]
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with core.sessions() as session:
        names = set(
            (await session.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))).scalars()
        )
        for table in tables:
            if table in names:
                rows = await session.execute(text(f"SELECT * FROM {table}"))
                out[table] = sorted(tuple(map(repr, row)) for row in rows)
    missing = set(tables) - set(out)
    assert not missing, f"tables renamed? {missing}"
    return out


def refused_calls(api: LocalBotAPI) -> tuple[list[str], int]:
    """Every outgoing call Telegram would refuse, described; and how many texts were checked as HTML."""
    problems: list[str] = []
    html_checked = 0
    for method, params in api.calls:
        texts: list[tuple[str, int]] = []
        if "text" in params and method in ("sendMessage", "editMessageText"):
            texts.append((str(params["text"]), 4096))
        if "caption" in params:
            texts.append((str(params["caption"]), 1024))
        for value, limit in texts:
            plain = value
            if str(params.get("parse_mode", "")).lower() == "html":
                html_checked += 1
                problem = html_problem(value)
                if problem:
                    problems.append(f"{method}: invalid HTML ({problem}) in {value[:120]!r}")
                    continue
                plain = re.sub(r"<[^>]+>", "", value)
                plain = re.sub(r"&(lt|gt|amp|quot);", "x", plain)
            if utf16_len(plain) > limit:
                problems.append(f"{method}: {utf16_len(plain)} characters, at most {limit}")
        if method == "answerCallbackQuery" and len(str(params.get("text") or "")) > 200:
            problems.append(f"answerCallbackQuery: text of {len(str(params['text']))} characters")
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard") or []:
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= 64:
                        problems.append(
                            f"{method}: callback_data {data!r} of {len(str(data).encode())} bytes"
                        )
                    if len(str(button.get("text", ""))) > 200 or not str(button.get("text", "")).strip():
                        problems.append(f"{method}: button text {button.get('text')!r}")
    return problems, html_checked


@pytest.fixture
async def fuzz(tmp_path: Path) -> AsyncIterator[Fuzz]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records([*STATIONS, *HOSTILE])
        await core.reload_index()
        await core.roles.grant(STAFF, "staff", "4401")
        await core.roles.grant(ADMIN, "admin")
        api = LocalBotAPI()
        url = await api.start()
        bot = build_bot(api.token, url)
        # No announcement delivery in the background: the forged phase's snapshot must see only what
        # updates do (a staff member's announcement from the first phase would still be going out).
        dp = build_dispatcher(
            core, clock=Clock(NOON), throttle_rate=1e6, throttle_burst=1e6, deliver_announcements=False
        )
        failures = Failures()
        state = Fuzz(api, core, dp, random.Random(SEED), real={}, failures=failures)

        async def count_handled(
            handler: Callable[..., Awaitable[Any]], event: Any, data: dict[str, Any]
        ) -> Any:
            try:
                return await handler(event, data)
            finally:
                state.handled += 1

        dp.update.outer_middleware(count_handled)  # type: ignore[arg-type]
        loggers = [logging.getLogger(name) for name in ("bot", "handlers", "aiogram", "storage")]
        for logger in loggers:
            logger.addHandler(failures)
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        await api.wait_for(lambda: api.calls_to("getUpdates"))
        try:
            yield state
        finally:
            for logger in loggers:
                logger.removeHandler(failures)
            await dp.stop_polling()
            await asyncio.wait_for(task, 10)
            await bot.session.close()
            await api.stop()


async def test_ten_thousand_generated_updates_break_nothing(fuzz: Fuzz) -> None:
    api, core = fuzz.api, fuzz.core
    stations = [(await core.stations.get(code)).id for code in ("GZ0001", "GZ0002", "GZ<b>1")]
    fuzz.real.update(station=stations, id=[1, 2], case=[1, 2])
    assert all_callback_classes() == {type(cb) for cb in _example_callbacks(fuzz.real)}, (
        "a new CallbackData class"
    )
    generated = {"message", "edited_message", "callback_query"}
    assert set(fuzz.dp.resolve_used_update_types()) <= generated, "the bot takes a new kind of update"

    # Phase 1: everybody, everything.
    await fuzz.run(TOTAL - FORGED, [*RIDERS, STAFF, ADMIN])

    # Phase 2: forged buttons from people the bot has never seen, who may change nothing but their own
    # settings (language, filter) and their own reports.
    strangers = [fuzz.stranger() for _ in range(BATCH)]
    await fuzz.feed([(user, None) for user in strangers])  # each gets a bot message to press on
    before = await snapshot(core)
    await fuzz.run(FORGED - len(strangers), strangers, forged_only=True)
    after = await snapshot(core)

    assert fuzz.fed == TOTAL
    assert not fuzz.failures.records, (
        f"{len(fuzz.failures.records)} errors while handling updates:\n{fuzz.failures.describe()}"
    )
    sorry = [
        (chat, m.text)
        for chat in [*RIDERS, STAFF, ADMIN, *GROUPS, *strangers]
        for m in api.bot_messages(chat)
        if any(s in m.text for s in SORRY)
    ]
    assert not sorry, sorry[:5]
    refused, html_checked = refused_calls(api)
    assert html_checked > TOTAL // 2, "the bot's replies are HTML: were they checked?"
    assert not refused, f"{len(refused)} calls Telegram refuses:\n" + "\n".join(refused[:15])
    errors = [
        (method, description) for method, description in api.errors if "not modified" not in description
    ]
    assert not errors, errors[:10]
    unanswered = [q for q in fuzz.queries if q not in api.callback_answers]
    assert not unanswered, f"{len(unanswered)} of {len(fuzz.queries)} callback queries were never answered"
    assert before.keys() == after.keys()
    for table in before:
        assert before[table] == after[table], f"forged buttons changed {table}"
