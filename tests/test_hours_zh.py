"""Specifications of reading opening hours as Chinese sheets write them (domain/hours_zh.py).

The table holds forms seen in union station lists and notices; each expected expression is itself checked
by the OSM parser, so the table cannot drift into expressions the rest of the service would refuse.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.hours import validate_hours
from domain.hours_zh import (
    CANNOT_READ,
    ENDS_BEFORE_START,
    NO_HOURS,
    NOT_A_TIME,
    NOTHING_FOUND,
    AcceptedHours,
    UnreadableHours,
    accept_hours,
    normalise_zh_hours,
)
from domain.values import InvalidOpeningHours

FORMS: list[tuple[str, str]] = [
    # all day
    ("全天", "24/7"),
    ("24小时", "24/7"),
    ("全天24小时", "24/7"),
    ("24小时营业", "24/7"),
    ("24小时开放", "24/7"),
    ("全天候开放", "24/7"),
    ("7×24小时", "24/7"),
    ("7*24小时", "24/7"),
    ("每天24小时", "24/7"),
    ("全年无休，24小时开放", "24/7"),
    ("每天0:00-24:00", "24/7"),
    ("２４小时", "24/7"),
    ("全天24小時", "24/7"),
    ("周一至周五 24小时", "Mo-Fr 00:00-24:00"),
    ("全天24小时，节假日休息", "24/7; PH off"),
    # every day
    ("每天 8:00-20:00", "Mo-Su 08:00-20:00"),
    ("每日8:00~20:00", "Mo-Su 08:00-20:00"),
    ("每天8:00至20:00", "Mo-Su 08:00-20:00"),
    ("每天8:00到20:00", "Mo-Su 08:00-20:00"),
    ("每天 8:00—20:00", "Mo-Su 08:00-20:00"),
    ("每天 8:00–20:00", "Mo-Su 08:00-20:00"),
    ("每天 8:00～20:00", "Mo-Su 08:00-20:00"),
    ("每天 ８：００－２０：００", "Mo-Su 08:00-20:00"),
    ("天天 7:30-21:30", "Mo-Su 07:30-21:30"),
    ("周一至周日 8:00-22:00", "Mo-Su 08:00-22:00"),
    ("周一到周日 8:00-22:00", "Mo-Su 08:00-22:00"),
    ("礼拜一到礼拜天 8:00-20:00", "Mo-Su 08:00-20:00"),
    ("开放时间：每天9:00-18:00", "Mo-Su 09:00-18:00"),
    ("营业时间：8:00-18:00", "08:00-18:00"),
    # weekdays
    ("周一至周五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("周一至周五9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("周一至五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("周一-周五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("周1-周5 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("星期一至星期五 8:30-17:30", "Mo-Fr 08:30-17:30"),
    ("星期一到星期六 8:00-18:00", "Mo-Sa 08:00-18:00"),
    ("礼拜一至礼拜五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("週一至週五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("工作日 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("工作日9:00-17:00，周末10:00-16:00", "Mo-Fr 09:00-17:00; Sa,Su 10:00-16:00"),
    ("周一至周五9:00-12:00，14:00-18:00", "Mo-Fr 09:00-12:00,14:00-18:00"),
    ("周一至周五 9:00-12:00；14:00-18:00", "Mo-Fr 09:00-12:00,14:00-18:00"),
    ("周一至周五 9:00-12:00、14:00-18:00", "Mo-Fr 09:00-12:00,14:00-18:00"),
    ("周一至周五 上午9:00-12:00 下午2:00-5:30", "Mo-Fr 09:00-12:00,14:00-17:30"),
    ("周一至周五 8:30-17:30（12:00-13:30午休）", "Mo-Fr 08:30-12:00,13:30-17:30"),
    ("9:00-17:00（周一至周五）", "Mo-Fr 09:00-17:00"),
    ("周五至周一 10:00-22:00", "Mo,Fr-Su 10:00-22:00"),
    # weekends and lists
    ("周末 10:00-16:00", "Sa,Su 10:00-16:00"),
    ("双休日 10:00-16:00", "Sa,Su 10:00-16:00"),
    ("周六、周日 9:00-12:00", "Sa,Su 09:00-12:00"),
    ("周六日 9:00-12:00", "Sa,Su 09:00-12:00"),
    ("周六和周日 9:00-12:00", "Sa,Su 09:00-12:00"),
    ("周一、三、五 14:00-18:00", "Mo,We,Fr 14:00-18:00"),
    ("星期六 9:00-12:00", "Sa 09:00-12:00"),
    ("周一至周五 9:00-17:00，周末休息", "Mo-Fr 09:00-17:00; Sa,Su off"),
    ("周一至周六 8:00-18:00，周日休息", "Mo-Sa 08:00-18:00; Su off"),
    ("周一休息，周二至周日 9:00-17:00", "Mo off; Tu-Su 09:00-17:00"),
    # holidays
    ("节假日休息", "PH off"),
    ("法定节假日休息", "PH off"),
    ("周一至周五 9:00-17:00，节假日休息", "Mo-Fr 09:00-17:00; PH off"),
    ("周一至周五 9:00-17:00（法定节假日除外）", "Mo-Fr 09:00-17:00; PH off"),
    ("周一至周五 9:00-17:00，节假日照常", "Mo-Fr 09:00-17:00"),
    ("周一至周日（含节假日）8:00-22:00", "Mo-Su 08:00-22:00"),
    ("每周一至周五 8:30-17:30", "Mo-Fr 08:30-17:30"),
    ("周二至周日 9:00-17:00（周一闭馆）", "Tu-Su 09:00-17:00; Mo off"),
    ("工作日08:30-12:00 14:30-17:30", "Mo-Fr 08:30-12:00,14:30-17:30"),
    ("每天 8:00-20:00，节假日照常开放", "Mo-Su 08:00-20:00"),
    ("周末及节假日休息", "Sa,Su off; PH off"),
    ("周六、周日及法定节假日休息", "Sa,Su off; PH off"),
    ("节假日 10:00-16:00，周一至周五 9:00-17:00", "Mo-Fr 09:00-17:00; PH 10:00-16:00"),
    (
        "周一至周五 9:00-17:00；周六 9:00-12:00；周日及法定节假日休息",
        "Mo-Fr 09:00-17:00; Sa 09:00-12:00; Su off; PH off",
    ),
    ("週一至週五 9:00-17:00，節假日休息", "Mo-Fr 09:00-17:00; PH off"),
    # times as people say them
    ("上午8:00-下午6:00", "08:00-18:00"),
    ("上午8点-下午6点", "08:00-18:00"),
    ("早上7点到晚上9点", "07:00-21:00"),
    ("下午2点-6点", "14:00-18:00"),
    ("8点-18点", "08:00-18:00"),
    ("8-18点", "08:00-18:00"),
    ("8点半-17点半", "08:30-17:30"),
    ("8点30分-17点30分", "08:30-17:30"),
    ("8时-18时", "08:00-18:00"),
    ("早8晚6", "08:00-18:00"),
    ("9.00-17.00", "09:00-17:00"),
    ("9am-5pm", "09:00-17:00"),
    ("每天8:00-0:00", "Mo-Su 08:00-24:00"),
    ("8:30-次日2:00", "08:30-02:00"),
    ("晚上10点-次日早上6点", "22:00-06:00"),
    ("晚上10点-凌晨2点", "22:00-02:00"),
    ("晚上8点-12点", "20:00-24:00"),
    ("每天 18:00-6:00", "Mo-Su 18:00-06:00"),
    ("周一至周五\n9:00-17:00\n周末休息", "Mo-Fr 09:00-17:00; Sa,Su off"),
    # OSM words mixed in
    ("Mo-Fr 9:00-17:00，周末休息", "Mo-Fr 09:00-17:00; Sa,Su off"),
    ("周一至周五 9:00-17:00, PH off", "Mo-Fr 09:00-17:00; PH off"),
]


def test_the_table_holds_sixty_forms_at_least() -> None:
    assert len(FORMS) >= 60
    assert len({text for text, _ in FORMS}) == len(FORMS)


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[text for text, _ in FORMS])
def test_chinese_form_normalises_to_valid_osm(text: str, expected: str) -> None:
    validate_hours(expected)  # the expectation itself is OSM the service accepts
    accepted = accept_hours(text)
    assert accepted == AcceptedHours(expected, text.strip())


@pytest.mark.parametrize("expected", sorted({expected for _, expected in FORMS}))
def test_normalised_output_re_normalises_to_itself(expected: str) -> None:
    assert accept_hours(expected) == AcceptedHours(expected)


@pytest.mark.parametrize(
    "text", ["24/7", "Mo-Fr 08:00-18:00; Sa 09:00-12:00", "PH off", 'Mo-Fr 09:00-17:00 "call first"']
)
def test_osm_syntax_is_kept_as_written_without_an_original(text: str) -> None:
    assert accept_hours(f"  {text} ") == AcceptedHours(text)


def test_full_width_osm_is_folded_and_kept_without_an_original() -> None:
    assert accept_hours("Ｍｏ－Ｆｒ ０９：００－１７：００") == AcceptedHours("Mo-Fr 09:00-17:00")


def test_empty_text_means_unknown_hours() -> None:
    assert accept_hours("  ") == AcceptedHours("")
    assert normalise_zh_hours("") == ""


@pytest.mark.parametrize(
    ("text", "reason", "fragment"),
    [
        ("春节期间休息", CANNOT_READ, "春节期间休息"),
        ("周一至周五", NO_HOURS, "周一至周五"),
        ("工作日", NO_HOURS, "工作日"),
        ("8:00-6:00 周一至周五", ENDS_BEFORE_START, "8:00-6:00"),
        ("每天 25:00-26:00", NOT_A_TIME, "25:00-26:00"),
        ("每天 8:70-9:00", NOT_A_TIME, "8:70-9:00"),
        ("节假日照常", NOTHING_FOUND, "节假日照常"),
        ("每天 9:00 17:00", CANNOT_READ, "9:00 17:00"),
        ("周一至周五 中午休息", CANNOT_READ, "中午休息"),
        ("8:00-次日9:00", NOT_A_TIME, "8:00-次日9:00"),
    ],
)
def test_what_cannot_be_read_is_refused_with_the_fragment_at_fault(
    text: str, reason: str, fragment: str
) -> None:
    with pytest.raises(UnreadableHours) as caught:
        accept_hours(text)
    assert caught.value.reason == reason
    assert caught.value.fragment == fragment
    assert isinstance(caught.value, InvalidOpeningHours)  # every existing handler of bad hours applies


def test_text_without_chinese_keeps_the_osm_parser_error() -> None:
    with pytest.raises(InvalidOpeningHours) as caught:
        accept_hours("Mo-Fx 09:00-17:00")
    assert not isinstance(caught.value, UnreadableHours)


# --- properties ------------------------------------------------------------------------------------------

_ZH_DAYS = "一二三四五六日"
_OSM_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")


@st.composite
def weekly_rule(draw: st.DrawFn) -> tuple[str, str]:
    """A weekday range with one or two time ranges, written as a clerk might, and its OSM form."""
    first = draw(st.integers(0, 4))
    last = draw(st.integers(first + 2, 6))
    prefix = draw(st.sampled_from(["周", "星期", "礼拜"]))
    to = draw(st.sampled_from(["至", "到", "-", "~", "—", "～"]))
    second_prefix = draw(st.sampled_from([prefix, ""]))
    days_zh = f"{prefix}{_ZH_DAYS[first]}{to}{second_prefix}{_ZH_DAYS[last]}"
    days_osm = f"{_OSM_DAYS[first]}-{_OSM_DAYS[last]}"
    opens = draw(st.integers(0, 11 * 60 - 1))
    closes = draw(st.integers(13 * 60, 23 * 60 + 59))
    ranges = [(opens, closes)]
    if draw(st.booleans()):
        split = draw(st.integers(opens + 1, 12 * 60))
        resume = draw(st.integers(12 * 60 + 1, closes - 1))
        ranges = [(opens, split), (resume, closes)]
    zh_times = draw(st.sampled_from(["，", "、", " ", "；"])).join(
        f"{draw(_clock_zh(start))}{draw(st.sampled_from(['-', '至', '~', '—']))}{draw(_clock_zh(end))}"
        for start, end in ranges
    )
    osm_times = ",".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in ranges)
    space = draw(st.sampled_from(["", " ", "　"]))
    return f"{days_zh}{space}{zh_times}", f"{days_osm} {osm_times}"


def _clock_zh(minutes: int) -> st.SearchStrategy[str]:
    hour, minute = divmod(minutes, 60)
    forms = [f"{hour}:{minute:02d}", f"{hour:02d}:{minute:02d}", f"{hour}：{minute:02d}"]
    forms.append(f"{hour}点" if minute == 0 else f"{hour}点{minute}分")
    if minute == 30:
        forms.append(f"{hour}点半")
    return st.sampled_from(forms)


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "0" <= c <= "9" else c for c in text)


_TAILS = {
    "": "",
    "，周末休息": "; Sa,Su off",
    "；节假日休息": "; PH off",
    "，周末及节假日休息": "; Sa,Su off; PH off",
}


@settings(max_examples=300, deadline=None)
@given(weekly_rule(), st.booleans(), st.sampled_from(sorted(_TAILS)))
def test_any_weekly_rule_reads_as_its_osm_form(rule: tuple[str, str], wide: bool, tail: str) -> None:
    text, expected = rule
    if wide:
        text = _full_width(text)
    result = normalise_zh_hours(text + tail)
    assert result == expected + _TAILS[tail]
    validate_hours(result)
    assert accept_hours(result) == AcceptedHours(result)  # a fixed point


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("周一五六日至到-:0123456789点半天节假休息全小时，、 每")), max_size=24
    )
)
def test_any_text_is_refused_cleanly_or_gives_a_fixed_point(text: str) -> None:
    try:
        accepted = accept_hours(text)
    except InvalidOpeningHours:
        return
    validate_hours(accepted.expression)
    assert accept_hours(accepted.expression).expression == accepted.expression
    assert accepted.original in ("", text.strip())
