"""Specifications of opening-hours evaluation: OSM syntax, China's holiday calendar, timezones, the memo."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opening_hours import OpeningHours, State

from domain.hours import (
    Hours,
    HoursStatus,
    OpenState,
    compile_hours,
    is_public_holiday,
    validate_hours,
)
from domain.values import InvalidOpeningHours

SHANGHAI = "Asia/Shanghai"
SH = ZoneInfo(SHANGHAI)
OPEN, CLOSED, UNKNOWN = OpenState.OPEN, OpenState.CLOSED, OpenState.UNKNOWN
WORKDAYS_PH_OFF = "Mo-Fr 09:00-18:00; PH off"
DAILY_SHORT_ON_PH = "Mo-Su 08:00-20:00; PH 10:00-16:00"


def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def status(expression: str, at: datetime, tz: str = SHANGHAI) -> HoursStatus:
    # A fresh object: no memo, no sharing with other tests.
    return Hours(expression, ZoneInfo(tz)).status(at)


# --- basics ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["24/7", "Mo-Su 00:00-24:00", '24/7 "always staffed"'])
def test_around_the_clock_station_is_open_at_any_instant_and_never_changes(expression: str) -> None:
    hours = compile_hours(expression, SHANGHAI)
    assert hours.is_always_open
    for at in (beijing(2025, 10, 1, 3), beijing(2024, 2, 10, 23, 59), beijing(2026, 6, 1, 12)):
        assert hours.state(at) is OPEN
        assert hours.status(at).next_change is None


@pytest.mark.parametrize("expression", ["Mo-Fr 09:00-18:00", "24/7; PH off", "PH off", ""])
def test_station_with_any_closed_time_is_not_always_open(expression: str) -> None:
    assert not compile_hours(expression, SHANGHAI).is_always_open


def test_night_range_is_open_after_midnight_until_its_end() -> None:
    night = "Mo-Su 22:00-06:00"
    assert status(night, beijing(2025, 3, 12, 3)) == HoursStatus(OPEN, beijing(2025, 3, 12, 6), "")
    assert status(night, beijing(2025, 3, 12, 12)) == HoursStatus(CLOSED, beijing(2025, 3, 12, 22), "")
    assert status(night, beijing(2025, 3, 12, 23)) == HoursStatus(OPEN, beijing(2025, 3, 13, 6), "")


def test_station_with_ph_off_is_closed_on_national_day() -> None:
    assert status(WORKDAYS_PH_OFF, beijing(2025, 10, 2, 10)).state is CLOSED
    assert status(WORKDAYS_PH_OFF, beijing(2025, 9, 30, 10)).state is OPEN


def test_holiday_only_station_opens_on_holidays_and_substituted_days_off_only() -> None:
    holiday_only = "PH 09:00-17:00"
    assert status(holiday_only, beijing(2025, 10, 2, 10)).state is OPEN  # a Thursday, but National Day
    assert status(holiday_only, beijing(2025, 10, 8, 10)).state is OPEN  # substituted day off
    assert status(holiday_only, beijing(2025, 10, 4, 10)).state is CLOSED  # plain weekend inside the week
    assert status(holiday_only, beijing(2025, 10, 2, 18)) == HoursStatus(CLOSED, beijing(2025, 10, 3, 9), "")


def test_weekday_or_holiday_rule_opens_on_weekdays_and_holidays_but_not_on_weekends() -> None:
    expression = "Mo-Fr,PH 09:00-17:00"
    assert status(expression, beijing(2025, 10, 9, 10)).state is OPEN  # Thursday
    assert status(expression, beijing(2025, 10, 6, 10)).state is OPEN  # Mid-Autumn Festival, a Monday
    assert status(expression, beijing(2025, 10, 5, 10)).state is CLOSED  # Sunday, no holiday
    assert status(expression, beijing(2025, 10, 3, 17)) == HoursStatus(CLOSED, beijing(2025, 10, 6, 9), "")


def test_china_calendar_includes_substituted_days_off_but_not_plain_weekends() -> None:
    national_day_week = [date(2025, 10, d) for d in range(1, 9)]
    assert [is_public_holiday(day) for day in national_day_week] == [True] * 3 + [False] * 2 + [True] * 3


def test_comment_of_the_matching_rule_is_reported() -> None:
    expression = 'Mo-Fr 09:00-17:00 "ring the bell"; Sa 10:00-12:00'
    assert status(expression, beijing(2025, 3, 12, 10)) == HoursStatus(
        OPEN, beijing(2025, 3, 12, 17), "ring the bell"
    )
    assert status(expression, beijing(2025, 3, 15, 11)).comment == ""


def test_comment_only_expression_means_unknown_hours_with_that_comment() -> None:
    hours = compile_hours('"by appointment"', SHANGHAI)
    assert hours.status(beijing(2025, 3, 12, 10)) == HoursStatus(UNKNOWN, None, "by appointment")
    assert not hours.is_always_open


def test_comment_only_fallback_rule_is_unknown_on_days_the_regular_rules_leave_out() -> None:
    # opening-hours-py applies a fallback rule to whole days no earlier rule matches.
    expression = 'Mo-Fr 09:00-17:00 || "by appointment"'
    assert status(expression, beijing(2025, 3, 12, 10)) == HoursStatus(OPEN, beijing(2025, 3, 12, 17), "")
    assert status(expression, beijing(2025, 3, 12, 18)) == HoursStatus(CLOSED, beijing(2025, 3, 13, 9), "")
    assert status(expression, beijing(2025, 3, 15, 10)) == HoursStatus(
        UNKNOWN, beijing(2025, 3, 17), "by appointment"
    )


def test_rule_with_unknown_modifier_is_unknown_while_it_applies() -> None:
    expression = 'Mo-Fr 09:00-17:00 unknown "call first"'
    assert status(expression, beijing(2025, 3, 12, 10)) == HoursStatus(
        UNKNOWN, beijing(2025, 3, 12, 17), "call first"
    )
    assert status(expression, beijing(2025, 3, 12, 18)).state is CLOSED


@pytest.mark.parametrize("expression", ["", "   "])
def test_empty_expression_means_unknown_hours(expression: str) -> None:
    hours = compile_hours(expression, SHANGHAI)
    assert hours.status(beijing(2025, 10, 1, 12)) == HoursStatus(UNKNOWN, None, "")
    assert hours.state(beijing(2025, 10, 1, 12)) is UNKNOWN
    assert hours.day_intervals(date(2025, 10, 1)) == [(time(0), None, UNKNOWN)]


def test_word_ph_inside_a_comment_is_not_the_holiday_selector() -> None:
    expression = 'Mo-Fr 09:00-17:00 "closed on PH"'
    assert status(expression, beijing(2025, 10, 2, 10)) == HoursStatus(
        OPEN, beijing(2025, 10, 2, 17), "closed on PH"
    )


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        compile_hours(WORKDAYS_PH_OFF, SHANGHAI).state(datetime(2025, 10, 2, 10))


def test_compiled_hours_are_shared_per_expression_and_timezone() -> None:
    assert compile_hours(WORKDAYS_PH_OFF, SHANGHAI) is compile_hours(WORKDAYS_PH_OFF, SHANGHAI)
    assert compile_hours(WORKDAYS_PH_OFF, SHANGHAI) is not compile_hours(WORKDAYS_PH_OFF, "Asia/Urumqi")


# --- National Day week 2025, day by day ---------------------------------------------------------------------

DayIntervals = list[tuple[time, time | None, OpenState]]
NINE_TO_SIX: DayIntervals = [(time(9), time(18), OPEN)]
EIGHT_TO_EIGHT: DayIntervals = [(time(8), time(20), OPEN)]
TEN_TO_FOUR: DayIntervals = [(time(10), time(16), OPEN)]

NATIONAL_DAY_WEEK: list[tuple[date, DayIntervals, DayIntervals]] = [
    # date, "Mo-Fr 09:00-18:00; PH off", "Mo-Su 08:00-20:00; PH 10:00-16:00"
    (date(2025, 9, 28), [], EIGHT_TO_EIGHT),  # Sunday (a make-up working day, which OSM cannot express)
    (date(2025, 9, 29), NINE_TO_SIX, EIGHT_TO_EIGHT),
    (date(2025, 9, 30), NINE_TO_SIX, EIGHT_TO_EIGHT),
    (date(2025, 10, 1), [], TEN_TO_FOUR),  # National Day
    (date(2025, 10, 2), [], TEN_TO_FOUR),
    (date(2025, 10, 3), [], TEN_TO_FOUR),
    (date(2025, 10, 4), [], EIGHT_TO_EIGHT),  # plain weekend
    (date(2025, 10, 5), [], EIGHT_TO_EIGHT),
    (date(2025, 10, 6), [], TEN_TO_FOUR),  # Mid-Autumn Festival
    (date(2025, 10, 7), [], TEN_TO_FOUR),  # substituted days off
    (date(2025, 10, 8), [], TEN_TO_FOUR),
    (date(2025, 10, 9), NINE_TO_SIX, EIGHT_TO_EIGHT),
    (date(2025, 10, 10), NINE_TO_SIX, EIGHT_TO_EIGHT),
    (date(2025, 10, 11), [], EIGHT_TO_EIGHT),  # Saturday (make-up working day)
    (date(2025, 10, 12), [], EIGHT_TO_EIGHT),
]


@pytest.mark.parametrize(("day", "workdays_ph_off", "daily_short_on_ph"), NATIONAL_DAY_WEEK, ids=str)
def test_national_day_week_follows_the_china_calendar_day_by_day(
    day: date, workdays_ph_off: DayIntervals, daily_short_on_ph: DayIntervals
) -> None:
    for expression, expected in ((WORKDAYS_PH_OFF, workdays_ph_off), (DAILY_SHORT_ON_PH, daily_short_on_ph)):
        assert Hours(expression, SH).day_intervals(day) == expected, expression
        # The instant-by-instant answer agrees with the day's intervals, at every half hour.
        for half_hours in range(48):
            at = datetime.combine(day, time(0), SH) + timedelta(minutes=30 * half_hours)
            inside = any(start <= at.time() < (end or time.max) for start, end, _ in expected)
            assert status(expression, at).state is (OPEN if inside else CLOSED), (expression, at)


def test_next_change_crosses_the_national_day_holidays() -> None:
    assert status(WORKDAYS_PH_OFF, beijing(2025, 9, 30, 12)) == HoursStatus(
        OPEN, beijing(2025, 9, 30, 18), ""
    )
    assert status(WORKDAYS_PH_OFF, beijing(2025, 9, 30, 18)) == HoursStatus(
        CLOSED, beijing(2025, 10, 9, 9), ""
    )
    assert status(WORKDAYS_PH_OFF, beijing(2025, 10, 4, 12)).next_change == beijing(2025, 10, 9, 9)
    assert status(DAILY_SHORT_ON_PH, beijing(2025, 9, 30, 20)).next_change == beijing(2025, 10, 1, 10)
    assert status(DAILY_SHORT_ON_PH, beijing(2025, 10, 3, 16)).next_change == beijing(2025, 10, 4, 8)


def test_night_range_starting_on_a_holiday_runs_into_the_next_working_day() -> None:
    holiday_nights = "PH 22:00-06:00"
    # The night before the holidays is not a holiday night...
    assert status(holiday_nights, beijing(2025, 9, 30, 23)).state is CLOSED
    assert status(holiday_nights, beijing(2025, 10, 1, 3)) == HoursStatus(
        CLOSED, beijing(2025, 10, 1, 22), ""
    )
    # ...while the night after the last holiday is, until 06:00 of the first working day.
    assert status(holiday_nights, beijing(2025, 10, 8, 23)) == HoursStatus(OPEN, beijing(2025, 10, 9, 6), "")
    assert status(holiday_nights, beijing(2025, 10, 9, 3)) == HoursStatus(OPEN, beijing(2025, 10, 9, 6), "")
    # Friday night 3 October spills into the plain Saturday.
    assert status(holiday_nights, beijing(2025, 10, 4, 5)).state is OPEN
    assert status(holiday_nights, beijing(2025, 10, 4, 23)).state is CLOSED


# --- timezones ---------------------------------------------------------------------------------------------


def test_instants_in_utc_and_other_timezones_are_read_in_the_station_timezone() -> None:
    hours = compile_hours(WORKDAYS_PH_OFF, SHANGHAI)
    utc_instant = datetime(2025, 10, 9, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
    berlin_instant = datetime(2025, 10, 9, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # also 09:30 in Beijing
    for at in (utc_instant, berlin_instant):
        result = hours.status(at)
        assert result == HoursStatus(OPEN, beijing(2025, 10, 9, 18), "")
        assert result.next_change is not None and result.next_change.tzinfo == SH
        assert hours.state(at) is OPEN
    assert hours.state(datetime(2025, 10, 9, 0, 30, tzinfo=UTC)) is CLOSED  # 08:30 in Beijing


def test_station_in_urumqi_keeps_xinjiang_time() -> None:
    hours = compile_hours("Mo-Su 10:00-19:00", "Asia/Urumqi")  # UTC+6, two hours behind Beijing
    assert hours.state(beijing(2025, 7, 1, 11)) is CLOSED  # 09:00 in Urumqi
    result = hours.status(beijing(2025, 7, 1, 12, 30))  # 10:30 in Urumqi
    assert result.state is OPEN
    assert result.next_change == datetime(2025, 7, 1, 19, tzinfo=ZoneInfo("Asia/Urumqi"))
    assert result.next_change is not None and result.next_change.utcoffset() == timedelta(hours=6)


# --- the memo ----------------------------------------------------------------------------------------------


def test_memo_answers_inside_its_window_and_reevaluates_outside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    hours = Hours(WORKDAYS_PH_OFF, SH)
    noon = beijing(2025, 9, 30, 12)
    instants = [noon, beijing(2025, 9, 30, 8), beijing(2025, 9, 30, 19), beijing(2025, 10, 9, 9), noon]
    for at in instants:
        assert hours.state(at) is status(WORKDAYS_PH_OFF, at).state, at

    # Now the window is [noon, 18:00): instants inside it must not reach the evaluator at all.
    def fail(self: Hours, ts: float) -> None:
        raise AssertionError("memo missed")

    monkeypatch.setattr(Hours, "_evaluate", fail)
    assert hours.state(beijing(2025, 9, 30, 17, 59)) is OPEN
    assert hours.state_at_timestamp(beijing(2025, 9, 30, 12).timestamp()) is OPEN
    with pytest.raises(AssertionError, match="memo missed"):
        hours.state(beijing(2025, 9, 30, 18))


REALISTIC_EXPRESSIONS = [
    "24/7",
    WORKDAYS_PH_OFF,
    DAILY_SHORT_ON_PH,
    "Mo-Fr,PH 09:00-17:00",
    "PH 09:00-17:00",
    "PH 22:00-06:00",
    "Mo-Su 22:00-06:00",
    "Mo-Fr 20:00-02:00; PH 20:00-04:00",
    "Mo-Fr 08:00-12:00,14:00-18:00; Sa 09:00-12:00; PH off",
    'Mo-Sa 07:00-19:00; Su,PH 09:00-17:00 "holiday hours"',
    "Jun-Sep 06:00-22:00; Oct-May 08:00-18:00; PH off",
    "Mo-Su 00:00-24:00; PH 08:00-20:00",
    'Mo-Fr 09:00-17:00 unknown "call first"',
    'Mo-Fr 09:00-17:00 || "by appointment"',
    '"by appointment"',
    "",
]
DAYTIME_PH_EXPRESSIONS = [
    e for e in REALISTIC_EXPRESSIONS if "PH" in e and not any(n in e for n in ("-06", "-02"))
]
# Instants in 2024-2026, half of them on the hour, where changes happen.
START_2024, END_2026 = int(beijing(2024, 1, 1).timestamp()), int(beijing(2027, 1, 1).timestamp())
instants = st.one_of(
    st.integers(START_2024, END_2026),
    st.integers(START_2024 // 3600, END_2026 // 3600).map(lambda h: h * 3600),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REALISTIC_EXPRESSIONS), st.lists(instants, min_size=1, max_size=12))
def test_memoised_state_equals_a_fresh_evaluation(expression: str, timestamps: list[int]) -> None:
    shared = compile_hours(expression, SHANGHAI)
    for ts in timestamps:
        at = datetime.fromtimestamp(ts, SH)
        assert shared.state(at) is Hours(expression, SH).status(at).state, at
        assert shared.state_at_timestamp(ts) is Hours(expression, SH).status(at).state, at


@settings(max_examples=300, deadline=None)
@given(expression=st.sampled_from(REALISTIC_EXPRESSIONS), ts=instants)
def test_state_holds_until_next_change_and_differs_at_it(expression: str, ts: int) -> None:
    at = datetime.fromtimestamp(ts, SH)
    result = status(expression, at)
    if result.next_change is None:
        return
    assert result.next_change > at
    assert status(expression, result.next_change - timedelta(seconds=1)).state is result.state
    assert status(expression, result.next_change).state is not result.state


@pytest.mark.parametrize("expression", REALISTIC_EXPRESSIONS)
@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2025, 9, 25), date(2025, 10, 15)),
        (date(2025, 12, 29), date(2026, 1, 5)),
        (date(2026, 2, 10), date(2026, 2, 27)),
    ],
    ids=["national-day", "new-year", "spring-festival"],
)
def test_chain_of_next_changes_misses_no_change_seen_every_quarter_hour(
    expression: str, first: date, last: date
) -> None:
    hours = Hours(expression, SH)
    at = datetime.combine(first, time(0), SH)
    current = hours.status(at)
    while at.date() <= last:
        while current.next_change is not None and at >= current.next_change:
            current = hours.status(current.next_change)
        assert status(expression, at).state is current.state, at
        at += timedelta(minutes=15)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DAYTIME_PH_EXPRESSIONS), instants)
def test_day_without_night_ranges_is_evaluated_as_plain_or_all_holiday_rules(
    expression: str, ts: int
) -> None:
    # Independent oracle: without ranges over midnight a day depends only on whether it is a holiday.
    local = datetime.fromtimestamp(ts, SH).replace(tzinfo=None)
    rules = expression.replace("PH", "Mo-Su") if is_public_holiday(local.date()) else expression
    library_state = OpeningHours(rules).state(local)[0]
    expected = {State.OPEN: OPEN, State.CLOSED: CLOSED, State.UNKNOWN: UNKNOWN}[library_state]
    assert status(expression, local.replace(tzinfo=SH)).state is expected


# --- validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Mo-Fr 9-18", "column 7, at '9-18': expected"),
        ("Mo-Fx 09:00-18:00", "expected a weekday"),
        ("by appointment", "double quotes"),
        ("Mo-Fr 09:00-18:00;;", "column 19"),
        ("PH +1 day 10:00-12:00", "day offset"),
        ("PH Mo-Fr 10:00-12:00", "PH,Mo-Fr"),
    ],
)
def test_broken_expression_is_rejected_with_a_short_readable_message(expression: str, expected: str) -> None:
    with pytest.raises(InvalidOpeningHours) as raised:
        validate_hours(expression)
    assert raised.value.expression == expression
    assert expected in raised.value.message
    assert len(raised.value.message.splitlines()) <= 2
    assert "^---" not in raised.value.message
    with pytest.raises(InvalidOpeningHours):
        compile_hours(expression, SHANGHAI)


@pytest.mark.parametrize(
    "expression", ["", " ", "24/7", WORKDAYS_PH_OFF, "Mo-Fr,PH 09:00-17:00", '"by appointment"']
)
def test_valid_and_empty_expressions_pass_validation(expression: str) -> None:
    validate_hours(expression)


# --- day intervals -----------------------------------------------------------------------------------------


def test_day_intervals_of_a_normal_working_day() -> None:
    expression = "Mo-Fr 08:00-12:00,14:00-18:00; PH off"
    assert compile_hours(expression, SHANGHAI).day_intervals(date(2025, 9, 30)) == [
        (time(8), time(12), OPEN),
        (time(14), time(18), OPEN),
    ]


def test_day_intervals_of_a_holiday() -> None:
    hours = compile_hours(DAILY_SHORT_ON_PH, SHANGHAI)
    assert hours.day_intervals(date(2025, 10, 1)) == [(time(10), time(16), OPEN)]
    assert compile_hours(WORKDAYS_PH_OFF, SHANGHAI).day_intervals(date(2025, 10, 1)) == []


def test_day_intervals_of_an_around_the_clock_station() -> None:
    assert compile_hours("24/7", SHANGHAI).day_intervals(date(2025, 10, 1)) == [(time(0), None, OPEN)]


def test_day_intervals_of_a_night_range_are_clipped_to_the_day() -> None:
    assert compile_hours("Mo-Su 22:00-06:00", SHANGHAI).day_intervals(date(2025, 3, 12)) == [
        (time(0), time(6), OPEN),
        (time(22), None, OPEN),
    ]


def test_day_intervals_include_unknown_time() -> None:
    expression = 'Mo-Fr 09:00-12:00, Mo-Fr 14:00-17:00 unknown "call first"'
    assert compile_hours(expression, SHANGHAI).day_intervals(date(2025, 3, 12)) == [
        (time(9), time(12), OPEN),
        (time(14), time(17), UNKNOWN),
    ]


def test_a_week_is_built_once_per_hours_and_local_day_and_shared() -> None:
    from bot.services.stations import week_json

    hours = compile_hours("Mo-Fr 09:00-17:00", "Asia/Shanghai")
    wednesday = datetime(2025, 6, 18, 2, 30, tzinfo=UTC)  # 10:30 in Beijing
    same_day = datetime(2025, 6, 18, 15, 59, tzinfo=UTC)  # 23:59 in Beijing
    next_day = datetime(2025, 6, 18, 16, 0, tzinfo=UTC)  # Thursday 00:00 in Beijing
    week = week_json(hours, wednesday)
    assert week_json(hours, same_day) is week  # one dict for every station with these hours today
    assert week["today"] == "2025-06-18"
    thursday = week_json(hours, next_day)
    assert thursday["today"] == "2025-06-19"
    assert thursday["days"] == week["days"]  # the same week, another today
    assert week_json(compile_hours("Mo-Fr 09:00-17:00", "Asia/Urumqi"), same_day)["today"] == "2025-06-18"
