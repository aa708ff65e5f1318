"""Rendering details of the bot's texts that depend on the reader: lists in the reader's language, moments in
the station's timezone with the zone named. Pure functions under aiogram's i18n context; no network."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import LIST_SEPARATORS, LOCALES, join_list
from bot.telegram import build_i18n
from handlers.views import listed, local_datetime

MOMENT = datetime(2026, 12, 4, 18, 39, tzinfo=UTC)


def test_every_language_has_a_list_separator() -> None:
    assert set(LIST_SEPARATORS) == set(LOCALES)
    assert join_list(["饮水", "卫生间"], "zh_Hans") == "饮水、卫生间"
    assert join_list(["Drinking water", "Toilet"], "en") == "Drinking water, Toilet"


@pytest.mark.parametrize(
    ("locale", "zone", "expected"),
    [
        ("zh_Hans", "Asia/Shanghai", "2026-12-05 02:39 北京时间"),
        ("zh_Hant", "Asia/Shanghai", "2026-12-05 02:39 北京時間"),
        ("en", "Asia/Shanghai", "2026-12-05 02:39 Beijing time"),
        ("en", "Asia/Hong_Kong", "2026-12-05 02:39 HKT"),
        ("en", "Asia/Urumqi", "2026-12-05 00:39 UTC+06:00"),
    ],
)
def test_staff_read_moments_in_the_stations_timezone_with_its_name(
    locale: str, zone: str, expected: str
) -> None:
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(locale):
        assert local_datetime(MOMENT, ZoneInfo(zone)) == expected
        assert listed(["a", "b"]) == f"a{LIST_SEPARATORS[locale]}b"
