"""Opening hours of stations: is a station open at an instant, until when, and what are today's hours.

Stations publish OpenStreetMap `opening_hours` expressions, evaluated here with opening-hours-py in the
station's own timezone. `PH` means China's statutory public holidays *including* the substituted days off,
as the `holidays` package knows them; opening-hours-py's built-in China calendar misses the substituted
days, so it is never given a country and `PH` is resolved by us instead: each expression is compiled into
variants in which the `PH` token is rewritten, and every local calendar day is evaluated with the variant
that is exact for that day *and the day before* (the day before matters for ranges over midnight, so
`PH 22:00-06:00` is open until 06:00 on the first working day after a holiday and not the night before).

Limitations, all explicit: `PH` with a day offset (`PH +1 day`) and `PH` directly followed by weekdays
(`PH Mo-Fr`) are rejected by `validate_hours`, since no weekday rewrite can express them; ranges that spill
more than one day past midnight are not supported by OSM anyway; China's make-up working days (调休上班, a
Saturday or Sunday worked) have no OSM syntax, so such a day follows its weekday's rules.

`compile_hours` parses an expression once per (expression, timezone); the resulting `Hours` keeps a
one-window memo so the search hot path answers "open at this instant?" with two float comparisons while
the instant stays inside the interval computed last time.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from opening_hours import OpeningHours, State

from domain.values import InvalidOpeningHours, StationRecord

__all__ = [
    "GRAMMAR_WORDS",
    "Hours",
    "HoursProblem",
    "HoursStatus",
    "OpenState",
    "compile_hours",
    "is_public_holiday",
    "validate_hours",
]


class HoursProblem(enum.StrEnum):
    """`InvalidOpeningHours.code` of the errors raised here, so an edge can word them in its language.

    SYNTAX comes with `details`: `column` (1-based, 0 at the end of the text), `token` (the text found
    there, at most 20 characters), `expected` (grammar rule names, see `GRAMMAR_WORDS`), `unexpected` (a
    rule name, or ""), and `free_text` (True when the text does not start like opening hours at all)."""

    SYNTAX = "syntax"
    PH_OFFSET = "ph_offset"
    PH_WITH_WEEKDAYS = "ph_with_weekdays"
    PH_POSITION = "ph_position"


class OpenState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class HoursStatus:
    state: OpenState
    #: Aware, in the station's timezone; None when the state never changes (or not within about a year).
    next_change: datetime | None
    #: Comment of the rule that decided the state (`Mo-Fr 09:00-17:00 "call first"`), or "".
    comment: str
    #: `next_change` in ISO 8601, formatted once (a status is shared by every answer in its window).
    next_change_iso: str | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        iso = self.next_change.isoformat() if self.next_change is not None else None
        object.__setattr__(self, "next_change_iso", iso)


_FROM_LIBRARY: MappingProxyType[State, OpenState] = MappingProxyType(
    {State.OPEN: OpenState.OPEN, State.CLOSED: OpenState.CLOSED, State.UNKNOWN: OpenState.UNKNOWN}
)

#: How far ahead a next change is looked for. A year plus a margin covers every holiday of the calendar,
#: so "no change within the horizon" really means "never changes" for all realistic expressions.
_HORIZON = timedelta(days=400)
#: The memo of a state found constant over the whole horizon is trusted a little less far, so that a
#: daylight-saving shift between wall-clock and absolute time can never stretch it past what was checked.
_HORIZON_MEMO_SECONDS = (_HORIZON - timedelta(days=2)).total_seconds()
_ONE_DAY = timedelta(days=1)
_WEEKDAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
#: Variant keys: what the `PH` token is replaced by. Without a country opening-hours-py matches `PH` on no
#: day at all, so keeping the token *is* the "no holiday around" variant.
_NO_HOLIDAY = "PH"
_ALL_HOLIDAYS = "Mo-Su"
#: How far ahead opening-hours-py looks for a change. Unbounded, an expression that never changes but has
#: selectors (`Mo-Fr 09:00-18:00; Mo-Su off`, the holiday variant of a `PH off` station) costs it seconds of
#: day-by-day scanning towards year 9999; bounded, it answers None and we probe again from the bound.
_SCAN_DAYS = 32
_SCAN = timedelta(days=_SCAN_DAYS)
#: Any instant: the state of a constant expression.
_PROBE = datetime(2000, 1, 1)
#: What a constant expression normalises to: one rule without selectors.
_CONSTANT_RULE = re.compile(r'(?:24/7|closed)(?: (?:open|closed|unknown))?(?: "[^"]*")?')
_COMMENT = re.compile(r'"[^"]*"?')


# --- China's holiday calendar ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _holiday_ordinals(year: int) -> frozenset[int]:
    # The package builds a year's calendar in about a millisecond: once per year and process is plenty.
    return frozenset(day.toordinal() for day in holidays.China(years=year))


def _is_holiday_ordinal(ordinal: int) -> bool:
    return ordinal in _holiday_ordinals(date.fromordinal(ordinal).year)


def is_public_holiday(day: date) -> bool:
    """True on China's statutory public holidays and substituted days off (what `PH` means here)."""
    return day.toordinal() in _holiday_ordinals(day.year)


@functools.lru_cache(maxsize=512)
def _calendar_breaks(year: int) -> tuple[int, ...]:
    """Sorted ordinals of the days of `year` that are a holiday or follow one: the only days on which an
    expression may need another variant than the plain one."""
    first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
    days = set(_holiday_ordinals(year)) | {o + 1 for o in _holiday_ordinals(year)}
    days |= {o + 1 for o in _holiday_ordinals(year - 1)}
    return tuple(sorted(o for o in days if first <= o <= last))


@functools.lru_cache(maxsize=4096)
def _variant_key(ordinal: int) -> str:
    """The `PH` replacement that is exact for this day and the day before it.

    Spill-over of a range past midnight belongs to the previous day's rules, so a day is evaluated with a
    variant in which `PH` matches exactly the holidays among {previous day, this day}: nothing, both (any
    day), or the one holiday of the two, named by its weekday (the two days never share a weekday).
    """
    previous, current = _is_holiday_ordinal(ordinal - 1), _is_holiday_ordinal(ordinal)
    if previous and current:
        return _ALL_HOLIDAYS
    if not previous and not current:
        return _NO_HOLIDAY
    holiday = ordinal if current else ordinal - 1
    return _WEEKDAYS[date.fromordinal(holiday).weekday()]


def _variant_end(ordinal: int, key: str) -> int:
    """Ordinal of the first day after `ordinal` that needs another variant than `key`."""
    if key == _NO_HOLIDAY:
        year = date.fromordinal(ordinal).year
        for candidate_year in (year, year + 1, year + 2):
            breaks = _calendar_breaks(candidate_year)
            i = bisect_left(breaks, ordinal + 1)
            if i < len(breaks):
                return breaks[i]
        return ordinal + 3 * 366  # a calendar without holidays: beyond any horizon
    following = ordinal + 1
    while _variant_key(following) == key:  # holiday runs last a week at most
        following += 1
    return following


# --- parsing ---------------------------------------------------------------------------------------------

_PEST_POSITION = re.compile(r"-->\s*(\d+):(\d+)")
_GRAMMAR_WORD = re.compile(r"[A-Za-z_]+")
_GRAMMAR_WORDS: MappingProxyType[str, str] = MappingProxyType(
    {
        "EOI": "end of input",
        "any_rule_separator": "a rule separator (; , ||)",
        "normal_rule_separator": "';'",
        "rules_modifier": "a modifier (open, closed, off, unknown)",
        "always_open": "'24/7'",
        "small_range_selectors": "weekdays or times",
        "week_selector": "a week selector",
        "monthday_range": "a date",
        "variable_date": "a date",
        "year": "a year",
        "month": "a month",
        "comment": "a comment in double quotes",
        "timespan": "a time range (HH:MM-HH:MM)",
        "holiday": "PH or SH",
        "wday": "a weekday (Mo Tu We Th Fr Sa Su)",
    }
)
_PH_TOKEN = re.compile(r"\bPH\b")
_PH_OFFSET = re.compile(r"\bPH\s*[+-]\s*\d")
_PH_WITH_WEEKDAYS = re.compile(r"\bPH\s+(?:Mo|Tu|We|Th|Fr|Sa|Su)\b")
_RULE_START = re.compile(r"(?:;|\|\||,)\s*$")
_RULE_SEPARATOR = re.compile(r";|\|\||,")


#: The parser's grammar rules by name, as `HoursProblem.SYNTAX` details name them.
GRAMMAR_WORDS = _GRAMMAR_WORDS
_RULE_LIST = re.compile(r"^(un)?expected (.*)$")


def _parser_error_details(expression: str, error: Exception) -> dict[str, Any]:
    """The parser's report as data: where it stopped, what stood there, which rules it expected."""
    text = str(error)
    details = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("= ")]
    expected: list[str] = []
    unexpected = ""
    match = _RULE_LIST.match(details[-1]) if details else None
    if match:
        rules = [r.strip() for r in re.split(r",\s*(?:or\s+)?|\s+or\s+", match.group(2)) if r.strip()]
        if match.group(1):
            unexpected = rules[0] if rules else ""
        else:
            expected = rules
    position = _PEST_POSITION.search(text)
    column = int(position.group(2)) if position else 0
    rest = expression[column - 1 :].split() if column else []
    if not rest:
        column = 0
    return {
        "column": column,
        "token": rest[0][:20] if rest else "",
        "expected": tuple(expected),
        "unexpected": unexpected,
        "free_text": column == 1 and '"' not in expression,
    }


def _readable_parser_error(expression: str, error: Exception) -> str:
    """One line out of the parser's multi-line ascii-art report: where, and what was expected there."""
    text = str(error)
    details = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("= ")]
    detail = (
        details[-1] if details else text.strip().splitlines()[0] if text.strip() else type(error).__name__
    )
    detail = _GRAMMAR_WORD.sub(lambda m: _GRAMMAR_WORDS.get(m.group(), m.group().replace("_", " ")), detail)
    position = _PEST_POSITION.search(text)
    if position is None:
        return detail
    column = int(position.group(2))
    rest = expression[column - 1 :].split()
    message = f"column {column}, at {rest[0][:20]!r}: {detail}" if rest else f"at the end: {detail}"
    if column == 1 and '"' not in expression:
        message += '\nfree text must be written as a comment in double quotes, e.g. "by appointment"'
    return message


def _split_template(expression: str) -> tuple[str, ...]:
    """Rewrite an expression for evaluation and split it around its `PH` tokens.

    The expression is `"PH".join(parts)` after two rewrites: a rule that is only a comment
    (`"by appointment"`) gets the `unknown` modifier, as in opening_hours.js and the OSM wiki, where
    opening-hours-py would read it as "open 24/7"; and `PH` inside comments is left alone.
    """
    pieces = expression.split('"')  # even indexes are code, odd ones comments; OSM comments hold no quotes
    parts: list[str] = []
    current: list[str] = []
    rule_has_code = False
    for index, piece in enumerate(pieces):
        if index % 2:
            if not rule_has_code:
                current.append("unknown ")
            current.append(f'"{piece}"' if index < len(pieces) - 1 else f'"{piece}')
            rule_has_code = True
            continue
        if _PH_OFFSET.search(piece):
            raise InvalidOpeningHours(
                expression,
                "PH with a day offset (like 'PH +1 day') is not supported",
                HoursProblem.PH_OFFSET,
            )
        if _PH_WITH_WEEKDAYS.search(piece):
            raise InvalidOpeningHours(
                expression,
                "'PH' directly followed by weekdays is not supported; write 'PH,Mo-Fr' or two rules",
                HoursProblem.PH_WITH_WEEKDAYS,
            )
        if _RULE_SEPARATOR.search(piece):
            rule_has_code = not _RULE_START.search(piece)
        elif piece.strip():
            rule_has_code = True
        segments = _PH_TOKEN.split(piece)
        current.append(segments[0])
        for segment in segments[1:]:
            parts.append("".join(current))
            current = [segment]
    parts.append("".join(current))
    return tuple(parts)


def _compile(expression: str, text: str) -> OpeningHours:
    try:
        return OpeningHours(text, max_interval_days=_SCAN_DAYS)
    except Exception as error:  # the binding raises its own ParserError and, for some inputs, ValueError
        raise InvalidOpeningHours(
            expression,
            _readable_parser_error(text, error),
            HoursProblem.SYNTAX,
            _parser_error_details(text, error),
        ) from None


def _prepare(expression: str) -> tuple[tuple[str, ...], OpeningHours, OpeningHours | None]:
    """Template parts plus the plain and the all-holiday variants (None when there is no `PH`)."""
    parts = _split_template(expression.strip())
    plain = _compile(expression, _NO_HOLIDAY.join(parts))
    if len(parts) == 1:
        return parts, plain, None
    try:
        holiday = OpeningHours(_ALL_HOLIDAYS.join(parts), max_interval_days=_SCAN_DAYS)
    except Exception:
        # The expression is valid OSM but PH sits where no weekday may stand in for it.
        raise InvalidOpeningHours(
            expression, "PH is not supported in this position", HoursProblem.PH_POSITION
        ) from None
    return parts, plain, holiday


def validate_hours(expression: str) -> None:
    """Raise InvalidOpeningHours, with a short readable message, unless `compile_hours` would accept it.

    An empty (or blank) expression is valid: it means the hours are unknown.
    """
    if expression.strip():
        _prepare(expression)


def _constant_state(variants: list[OpeningHours]) -> tuple[OpenState, str] | None:
    """The state and comment every variant keeps forever, if they all agree on one.

    Decided on the normalised form, not by asking for a next change: opening-hours-py answers "never" for
    fallback rules (`Mo-Fr 09:00-17:00 || unknown`) that do change, and takes seconds to be sure of it for
    some expressions that really never change.
    """
    found: set[tuple[State, str]] = set()
    for variant in variants:
        try:
            normalised = str(variant.normalize())
        except Exception:
            return None
        if _CONSTANT_RULE.fullmatch(normalised) is None:
            return None
        found.add(variant.state(_PROBE))
    if len(found) != 1:
        return None
    state, comment = found.pop()
    return _FROM_LIBRARY[state], comment


# --- evaluation ------------------------------------------------------------------------------------------


class Hours:
    """One compiled expression in one timezone. Build with `compile_hours`, which shares instances."""

    __slots__ = (
        "_constant",
        "_has_fallback",
        "_has_ph",
        "_memo",
        "_parts",
        "_status_memo",
        "_variants",
        "expression",
        "is_always_open",
        "tz",
    )

    expression: str
    tz: ZoneInfo
    #: True for `24/7` and its equivalents (`Mo-Su 00:00-24:00`), holidays included.
    is_always_open: bool

    def __init__(self, expression: str, tz: ZoneInfo) -> None:
        self.expression = expression
        self.tz = tz
        self._variants: dict[str, OpeningHours] = {}
        # opening-hours-py evaluates fallback rules (`||`) right at an instant but misreports their next
        # change (None from a weekday evening of `Mo-Fr 09:00-17:00 || unknown`): such expressions are
        # re-checked at every midnight instead of trusting a change predicted beyond the current day.
        self._has_fallback = "||" in _COMMENT.sub("", expression)
        # (valid_from, valid_until, state) in POSIX seconds: the state holds on [valid_from, valid_until).
        self._memo: tuple[float, float, OpenState] = (math.inf, -math.inf, OpenState.UNKNOWN)
        # The same window with the whole status, for result rendering (the comment and the next change).
        self._status_memo: tuple[float, float, HoursStatus | None] = (math.inf, -math.inf, None)
        if not expression.strip():
            self._parts: tuple[str, ...] = ()
            self._has_ph = False
            self._constant: tuple[OpenState, str] | None = (OpenState.UNKNOWN, "")
        else:
            self._parts, plain, holiday = _prepare(expression)
            self._has_ph = holiday is not None
            self._variants[_NO_HOLIDAY] = plain
            if holiday is not None:
                self._variants[_ALL_HOLIDAYS] = holiday
            # Each day's schedule comes from the plain or the all-holiday rules, so when both agree on a
            # state forever every mixed variant does too and the calendar never needs to be consulted.
            self._constant = _constant_state(list(self._variants.values()))
        self.is_always_open = self._constant is not None and self._constant[0] is OpenState.OPEN
        if self._constant is not None:
            self._memo = (-math.inf, math.inf, self._constant[0])
            self._status_memo = (-math.inf, math.inf, HoursStatus(self._constant[0], None, self._constant[1]))

    def __repr__(self) -> str:
        return f"Hours({self.expression!r}, {self.tz.key!r})"

    # Public API ------------------------------------------------------------------------------------------

    def state(self, at: datetime) -> OpenState:
        """Open, closed or unknown at an aware instant; the search hot path."""
        if at.tzinfo is None:
            raise ValueError("opening hours need an aware datetime")
        return self.state_at_timestamp(at.timestamp())

    def state_at_timestamp(self, ts: float) -> OpenState:
        """Open, closed or unknown at a POSIX timestamp; answered from the memo while it covers `ts`."""
        valid_from, valid_until, state = self._memo
        if valid_from <= ts < valid_until:
            return state
        return self._evaluate(ts)[0]

    def window_at_timestamp(self, ts: float) -> tuple[float, float, OpenState]:
        """(valid_from, valid_until, state): the state at `ts` and an interval around it over which it holds
        (POSIX seconds; valid_from may be later than the true last change)."""
        self.state_at_timestamp(ts)
        return self._memo

    def status(self, at: datetime) -> HoursStatus:
        """State, next change (aware, in the station's timezone) and comment at an aware instant."""
        if at.tzinfo is None:
            raise ValueError("opening hours need an aware datetime")
        return self.status_at_timestamp(at.timestamp())

    def status_at_timestamp(self, ts: float) -> HoursStatus:
        """`status` at POSIX seconds `ts`."""
        valid_from, valid_until, cached = self._status_memo
        if cached is not None and valid_from <= ts < valid_until:
            return cached
        state, comment, change = self._evaluate(ts)
        status = HoursStatus(state, None if change is None else change.replace(tzinfo=self.tz), comment)
        valid_from, valid_until, _ = self._memo
        self._status_memo = (valid_from, valid_until, status)
        return status

    def day_intervals(self, day: date) -> list[tuple[time, time | None, OpenState]]:
        """The open and unknown intervals of a local calendar day, clipped to it; an end of None means
        "until midnight". Closed time is left out, so a day off is an empty list."""
        if self._constant is not None:
            state = self._constant[0]
            return [] if state is OpenState.CLOSED else [(time(0), None, state)]
        start = datetime.combine(day, time(0))
        end = start + _ONE_DAY
        intervals: list[tuple[time, time | None, OpenState]] = []
        cursor = start
        state = self._state_local(cursor)[0]
        while True:
            change = self._next_change_local(cursor, state, end)
            if state is not OpenState.CLOSED:
                intervals.append((cursor.time(), None if change is None else change.time(), state))
            if change is None:
                return intervals
            cursor = change
            state = self._state_local(cursor)[0]

    # Internals: everything below works on naive local wall-clock datetimes ------------------------------

    def _evaluate(self, ts: float) -> tuple[OpenState, str, datetime | None]:
        if self._constant is not None:
            return self._constant[0], self._constant[1], None
        local = datetime.fromtimestamp(ts, self.tz).replace(tzinfo=None)
        state, comment = self._state_local(local)
        change = self._next_change_local(local, state, local + _HORIZON)
        if change is None:
            valid_until = ts + _HORIZON_MEMO_SECONDS
        else:
            valid_until = change.replace(tzinfo=self.tz).timestamp()
        # One tuple, swapped in one assignment: readers on other threads see either window, never a mix.
        self._memo = (ts, valid_until, state)
        return state, comment, change

    def _variant(self, key: str) -> OpeningHours:
        variant = self._variants.get(key)
        if variant is None:
            # Single-weekday variants are needed only around holidays: compile them on first use. They
            # cannot fail, the all-holiday variant with the same structure already compiled.
            variant = self._variants[key] = OpeningHours(key.join(self._parts), max_interval_days=_SCAN_DAYS)
        return variant

    def _key(self, ordinal: int) -> str:
        return _variant_key(ordinal) if self._has_ph else _NO_HOLIDAY

    def _state_local(self, local: datetime) -> tuple[OpenState, str]:
        state, comment = self._variant(self._key(local.toordinal())).state(local)
        return _FROM_LIBRARY[state], comment

    def _next_change_local(self, local: datetime, state: OpenState, limit: datetime) -> datetime | None:
        """First local instant in (local, limit) at which the state stops being `state`, or None.

        A variant's prediction is trusted up to the midnight where the holiday situation changes (every
        midnight for fallback rules) and up to its scan bound; beyond that the state is probed afresh, with
        the variant of that day. Changes of comment alone are stepped over.
        """
        cursor = local
        while cursor < limit:
            ordinal = cursor.toordinal()
            key = self._key(ordinal)
            variant = self._variant(key)
            trusted_until: datetime | None = None
            candidate = variant.next_change(cursor)
            while candidate is not None and candidate < limit:
                if candidate.toordinal() != ordinal:
                    if trusted_until is None:
                        trusted_until = self._trusted_until(cursor, key, limit)
                    if candidate >= trusted_until:
                        break
                if _FROM_LIBRARY[variant.state(candidate)[0]] is not state:
                    return candidate
                candidate = variant.next_change(candidate)
            if trusted_until is None:
                trusted_until = self._trusted_until(cursor, key, limit)
            if trusted_until >= limit:
                return None
            if self._state_local(trusted_until)[0] is not state:
                return trusted_until
            cursor = trusted_until
        return None

    def _trusted_until(self, cursor: datetime, key: str, limit: datetime) -> datetime:
        ordinal = cursor.toordinal()
        if self._has_fallback:
            end = datetime.fromordinal(ordinal + 1)
        elif self._has_ph:
            end = datetime.fromordinal(_variant_end(ordinal, key))
        else:
            end = limit
        return min(end, cursor + _SCAN)


@functools.lru_cache(maxsize=65536)
def compile_hours(expression: str, tz: str) -> Hours:
    """The shared `Hours` of an expression in an IANA timezone; raises InvalidOpeningHours.

    Many stations share a handful of expressions, so sharing also shares the memo: a search evaluating
    thousands of stations at the same instant calls opening-hours-py once per distinct expression.
    An unknown timezone name raises zoneinfo.ZoneInfoNotFoundError.
    """
    return Hours(expression, ZoneInfo(tz))


def hours_of(station: StationRecord, default_tz: str) -> Hours | None:
    """The compiled hours of a station, or None when unknown (empty, or invalid despite validation)."""
    if not station.opening_hours.strip():
        return None
    try:
        return compile_hours(station.opening_hours, station.timezone or default_tz)
    except InvalidOpeningHours:
        return None
