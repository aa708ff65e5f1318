"""Opening hours as Chinese sheets write them, normalised to OpenStreetMap `opening_hours` syntax.

Union clerks type `周一至周五 9:00-17:00，周末休息` or `全天24小时`, not `Mo-Fr 09:00-17:00; Sa,Su off`.
`normalise_zh_hours` reads the forms seen in such sheets (weekday ranges and lists with 周/星期/礼拜,
工作日, 周末, 每天, holidays 节假日 with 休息 or 照常, 全天/24小时, times as `9:00`, `9点半`, `下午6点`,
`次日2:00`, full-width digits and punctuation, Traditional characters) and writes the OSM expression;
`accept_hours` is what every entry point calls: OSM syntax passes unchanged, Chinese is normalised, and
the original text is handed back beside the expression so it can be kept.

How a text is read: it is cut into tokens (days, holidays, times, "all day", "closed", "as usual" and
filler words such as 开放时间); a day or holiday token after a rule that already has its hours starts a
new rule, so `，` may separate either two time ranges or two rules, as it does in real sheets. Holiday
rules are written last, because in OSM a later rule overrides an earlier one and in Chinese a holiday
clause is always the exception. Nothing is guessed: `8:00-6:00` (an end before the start, in the morning)
is refused with a hint rather than read as 18:00 or as overnight, and a day without hours is refused.

Pure Python: no I/O, no gettext. Error messages are msgids marked with `N_`, translated at the edges.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from domain.hours import validate_hours
from domain.values import InvalidOpeningHours

__all__ = [
    "HOURS_EXAMPLE_OSM",
    "HOURS_EXAMPLE_ZH",
    "AcceptedHours",
    "UnreadableHours",
    "accept_hours",
    "normalise_zh_hours",
]


def N_(message: str) -> str:
    """Marks a msgid for extraction; the edges translate it."""
    return message


#: Forms shown to clerks and riders as "write it like this".
HOURS_EXAMPLE_ZH: Final = "周一至周五 9:00-17:00，周末休息"
HOURS_EXAMPLE_OSM: Final = "Mo-Fr 09:00-17:00; Sa,Su off"

#: Why a text could not be read; each takes `{fragment}` (the piece of the text at fault).
CANNOT_READ: Final = N_("cannot read “{fragment}”")
NO_HOURS: Final = N_("“{fragment}” has no hours")
ENDS_BEFORE_START: Final = N_(
    "“{fragment}” ends before it starts: write the end as 18:00 or 下午6:00, or 次日6:00 for overnight"
)
NOT_A_TIME: Final = N_("“{fragment}” is not a time of day")
NOTHING_FOUND: Final = N_("no opening hours found in “{fragment}”")


class UnreadableHours(InvalidOpeningHours):
    """Hours text that is neither OSM syntax nor a Chinese form we read. `reason` is one of the msgids
    above, to be formatted with `fragment` after translation."""

    CODE = "unreadable_chinese"

    def __init__(self, expression: str, reason: str, fragment: str) -> None:
        super().__init__(expression, reason.format(fragment=fragment), self.CODE, {"fragment": fragment})
        self.reason = reason
        self.fragment = fragment


@dataclass(frozen=True, slots=True)
class AcceptedHours:
    """What to store: the OSM expression, and the text as written when it had to be translated ("" when
    the text was OSM syntax already)."""

    expression: str
    original: str = ""


# --- characters ------------------------------------------------------------------------------------------

# NFKC turns full-width digits, letters, `：` `，` `；` `（` `～` into ASCII; these are the rest.
_CHARACTERS = str.maketrans(
    {
        "—": "-",
        "–": "-",
        "―": "-",
        "‐": "-",
        "‑": "-",
        "−": "-",
        "〜": "~",
        "～": "~",
        "﹣": "-",
        "：": ":",
        "。": ";",
        "【": "(",
        "】": ")",
        "〔": "(",
        "〕": ")",
        "\u3000": " ",
    }
)
# Traditional characters of the words below, so that one grammar reads both scripts.
_SIMPLIFIED = str.maketrans(
    {
        "週": "周",
        "禮": "礼",
        "節": "节",
        "點": "点",
        "時": "时",
        "開": "开",
        "營": "营",
        "業": "业",
        "閉": "闭",
        "關": "关",
        "門": "门",
        "館": "馆",
        "雙": "双",
        "無": "无",
        "務": "务",
        "暫": "暂",
        "間": "间",
        "與": "与",
        "國": "国",
        "後": "后",
        "晝": "昼",
        "對": "对",
        "內": "内",
        "辦": "办",
        "裡": "里",
        "裏": "里",
        "約": "约",
        "僅": "仅",
        "歲": "岁",
        "個": "个",
        "兩": "两",
    }
)
_CJK = re.compile(r"[\u3400-\u9fff]")

# --- tokens ----------------------------------------------------------------------------------------------

_WEEKDAYS: Final = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_NUMBER = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_DAY_NUMBER.update({str(n): n - 1 for n in range(1, 8)})
_OSM_DAY = {day.lower(): n for n, day in enumerate(_WEEKDAYS)}
_PREFIX = r"(?:周|星期|礼拜)"
_DAY_CJK = r"[一二三四五六日天七]"
# A digit is a weekday only right after a prefix and not as the start of a time (周1 vs 周五8:00).
_DAY = rf"(?:{_DAY_CJK}|[1-7](?![\d:.点时]))"
_TO = r"(?:至|到|-|~)"
_AND = r"(?:[、,/和及与]|以及)"

_TIME = (
    r"(?P<{p}period>凌晨|早上|早晨|清晨|上午|中午|午后|下午|傍晚|晚上|夜间|夜里|早|晚|夜)?"
    r"(?P<{p}next>次日|翌日|第二天|隔天|次晨)?"
    r"(?P<{p}period2>凌晨|早上|上午|中午|下午|晚上|早|晚)?"
    r"(?P<{p}h>\d{{1,2}})"
    r"(?:(?:[:.](?P<{p}m>\d{{2}}))|点(?:(?P<{p}half>半)|(?P<{p}m2>\d{{1,2}})分?|整)?|时(?:(?P<{p}m3>\d{{1,2}})分)?)?"
    r"(?:\s*(?P<{p}ampm>am|pm|a\.m\.|p\.m\.))?"
)

_TOKENS: Final = [
    (
        "allday",
        r"7\s*[x×*]\s*24\s*(?:小时|h)?|(?:全天候|全天|全日|整天|昼夜)?\s*24\s*(?:小时|h|hrs?)(?:不间断|不打烊)?",
    ),
    ("allday", r"全天候|全天|全日|整天|昼夜|通宵达旦"),
    ("everyday", r"每天|每日|天天|日日|全周|一周七天|七天|7天|全年无休|全年"),
    ("workdays", r"工作日|平日"),
    ("weekend", r"周末|双休日"),
    ("dayrange", rf"每?{_PREFIX}(?P<a>{_DAY})\s*{_TO}\s*{_PREFIX}?(?P<b>{_DAY})"),
    ("daylist", rf"每?{_PREFIX}(?P<first>{_DAY})(?P<more>(?:{_AND}?{_DAY_CJK}(?![点时]))*)"),
    # OSM words inside Chinese text ("Mo-Fr 9:00-17:00，周末休息"), as clerks mix them.
    ("osmdays", r"(?P<a>mo|tu|we|th|fr|sa|su)(?:\s*-\s*(?P<b>mo|tu|we|th|fr|sa|su))?(?![a-z])"),
    ("holiday", r"ph(?![a-z])|(?:国家)?法定(?:节假日|假日|节日|假期)|节假日|公众假期|节日|假日|假期"),
    ("usual", r"照常(?:开放|营业|服务|办公)?|正常(?:开放|营业|服务|办公)|不休息|无休|不打烊"),
    ("breaks", r"午休|午间休息"),
    (
        "off",
        r"(?:off|closed)(?![a-z])|不对外开放|停止开放|停止服务|暂停服务|暂停开放|不开放|不营业|不办公|休息|闭馆|闭站|休馆|关闭|关门|停业|歇业|除外|休",
    ),
    ("time_range", _TIME.format(p="s") + rf"\s*{_TO}\s*" + _TIME.format(p="e")),
    ("time_pair", _TIME.format(p="s") + r"\s*" + _TIME.format(p="e")),
    # "（含节假日）": holidays keep the hours of their weekday, which is what OSM does without a PH rule.
    ("filler", r"(?:含|包括|包含)(?:法定)?(?:节假日|假日|节日)(?:在内)?"),
    (
        "filler",
        r"开放时间|营业时间|服务时间|办公时间|工作时间|开放时段|开放|营业|服务|办公|时间|期间|每周|均|都|为|是|从|起|止|对外|开门|内|的|:",
    ),
    ("separator", r"[\s,、;/|&+()\[\]]+|和|及|以及|与|或"),
]
#: Tried in order at each position, the first match wins (as in an alternation; the patterns share group
#: names, which one alternation could not).
_PATTERNS: Final = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _TOKENS)


@dataclass(slots=True)
class _Rule:
    days: set[int] = field(default_factory=set)
    holiday: bool = False
    ranges: list[tuple[int, int]] = field(default_factory=list)
    breaks: list[tuple[int, int]] = field(default_factory=list)
    allday: bool = False
    off: bool = False
    usual: bool = False
    text: list[str] = field(default_factory=list)

    @property
    def has_hours(self) -> bool:
        return bool(self.ranges or self.allday or self.off or self.usual)

    @property
    def has_days(self) -> bool:
        return bool(self.days) or self.holiday


# --- times -----------------------------------------------------------------------------------------------

_PM_PERIODS = frozenset({"午后", "下午", "傍晚", "晚上", "夜间", "夜里", "晚", "夜"})
_NIGHT_PERIODS = frozenset({"晚上", "夜间", "夜里", "晚", "夜"})


def _clock(match: re.Match[str], p: str, inherited: str | None) -> tuple[int, str | None, bool]:
    """(minutes after midnight, the period word in force, "next day" flag) of one time in a range."""
    group = match.group
    hour = int(group(f"{p}h"))
    minute_text = group(f"{p}m") or group(f"{p}m2") or group(f"{p}m3")
    minute = 30 if group(f"{p}half") else int(minute_text or 0)
    period = group(f"{p}period") or group(f"{p}period2")
    ampm = (group(f"{p}ampm") or "").replace(".", "").lower()
    fragment = match.group(0)
    if minute >= 60 or hour > 24 or (hour == 24 and minute):
        raise ValueError(fragment)
    if ampm:
        if hour > 12:
            raise ValueError(fragment)
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif period is None and inherited is not None:
        candidate = _with_period(hour, inherited)
        return candidate * 60 + minute, None, bool(group(f"{p}next"))
    elif period is not None:
        hour = _with_period(hour, period)
    return hour * 60 + minute, period, bool(group(f"{p}next"))


def _with_period(hour: int, period: str) -> int:
    if period == "凌晨":
        return 0 if hour == 12 else hour
    if period == "中午":
        return hour if hour >= 11 else hour + 12
    if period in _NIGHT_PERIODS and hour == 12:
        return 24
    if period in _PM_PERIODS and hour < 12:
        return hour + 12
    return hour


def _range(match: re.Match[str], fragment: str, text: str) -> tuple[int, int]:
    try:
        start, period, _ = _clock(match, "s", None)
        end, end_period, next_day = _clock(match, "e", None)
        if end_period is None and period is not None and not match.group("eampm"):
            inherited, _, _ = _clock(match, "e", period)
            if inherited > start:  # "下午2点-6点" is 14-18, "晚上10点-2点" stays overnight
                end = inherited
    except ValueError as error:
        raise UnreadableHours(text, NOT_A_TIME, str(error)) from None
    if start >= 24 * 60:
        raise UnreadableHours(text, NOT_A_TIME, fragment)
    if end == 0 and start > 0 and not next_day:
        end = 24 * 60  # "8:00-0:00": until midnight
    if end == start:
        raise UnreadableHours(text, ENDS_BEFORE_START, fragment)
    overnight = next_day or match.group("eperiod") == "凌晨" or match.group("eperiod2") == "凌晨"
    if end < start and not overnight and start < 12 * 60 and not match.group("eperiod"):
        # "8:00-6:00": 18:00 or overnight? The clerk knows; we do not guess.
        raise UnreadableHours(text, ENDS_BEFORE_START, fragment)
    if next_day and end >= start:
        raise UnreadableHours(text, NOT_A_TIME, fragment)  # longer than a day
    return start, end


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _subtract(ranges: list[tuple[int, int]], breaks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Open ranges minus the breaks inside them ("8:30-17:30（12:00-13:30午休）")."""
    result = ranges
    for b_start, b_end in breaks:
        cut: list[tuple[int, int]] = []
        for start, end in result:
            if start < b_start < end and start < b_end < end:
                cut += [(start, b_start), (b_end, end)]
            else:
                cut.append((start, end))
        result = cut
    return result


# --- days ------------------------------------------------------------------------------------------------


def _days_text(days: set[int]) -> str:
    """Weekday numbers (Monday 0) as OSM: runs of three or more as ranges, the rest as a list."""
    ordered = sorted(days)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{_WEEKDAYS[ordered[i]]}-{_WEEKDAYS[ordered[j]]}")
        else:
            parts.extend(_WEEKDAYS[d] for d in ordered[i : j + 1])
        i = j + 1
    return ",".join(parts)


def _day_span(a: int, b: int) -> set[int]:
    return set(range(a, b + 1)) if a <= b else set(range(a, 7)) | set(range(0, b + 1))


# --- reading ---------------------------------------------------------------------------------------------


def _prepare(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_CHARACTERS).translate(_SIMPLIFIED)
    return text.strip()


def _tokens(text: str, original: str) -> list[tuple[str, re.Match[str]]]:
    tokens: list[tuple[str, re.Match[str]]] = []
    position = 0
    while position < len(text):
        for kind, pattern in _PATTERNS:  # noqa: B007 - the kind of the pattern that matched is used below
            match = pattern.match(text, position)
            if match is not None and match.end() > position:
                break
        else:
            rest = text[position:].split()
            raise UnreadableHours(original, CANNOT_READ, (rest[0] if rest else text[position:])[:12])
        if kind == "time_pair" and not (
            (match.group("speriod") or match.group("speriod2"))
            and (match.group("eperiod") or match.group("eperiod2"))
        ):
            # Two times side by side are a range only as "早8晚6"; "9:00 17:00" needs a dash.
            raise UnreadableHours(original, CANNOT_READ, match.group(0)[:12])
        if kind not in ("filler", "separator"):
            tokens.append((kind, match))
        position = match.end()
    return tokens


def _rules(tokens: list[tuple[str, re.Match[str]]], original: str) -> list[_Rule]:
    rules: list[_Rule] = []
    rule = _Rule()
    previous_kind = ""

    def start_rule() -> None:
        nonlocal rule
        if rule.has_hours:
            rules.append(rule)
            rule = _Rule()

    for kind, match in tokens:
        fragment = match.group(0)
        if kind in ("everyday", "workdays", "weekend", "dayrange", "daylist", "osmdays", "holiday"):
            start_rule()
            if kind == "everyday":
                rule.days |= set(range(7))
            elif kind == "workdays":
                rule.days |= set(range(5))
            elif kind == "weekend":
                rule.days |= {5, 6}
            elif kind == "dayrange":
                rule.days |= _day_span(_DAY_NUMBER[match.group("a")], _DAY_NUMBER[match.group("b")])
            elif kind == "osmdays":
                first = _OSM_DAY[match.group("a").lower()]
                last = match.group("b")
                rule.days |= _day_span(first, _OSM_DAY[last.lower()]) if last else {first}
            elif kind == "daylist":
                rule.days.add(_DAY_NUMBER[match.group("first")])
                rule.days |= {_DAY_NUMBER[c] for c in match.group("more") if c in _DAY_NUMBER}
            else:
                rule.holiday = True
        elif kind in ("time_range", "time_pair"):
            rule.ranges.append(_range(match, fragment, original))
        elif kind == "allday":
            rule.allday = True
        elif kind == "off":
            if previous_kind in ("time_range", "time_pair") and len(rule.ranges) > 1:
                rule.breaks.append(rule.ranges.pop())  # "12:00-13:00休息": a break, not a closed day
            else:
                rule.off = True
        elif kind == "breaks":
            if previous_kind in ("time_range", "time_pair") and len(rule.ranges) > 1:
                rule.breaks.append(rule.ranges.pop())
            else:
                raise UnreadableHours(original, NO_HOURS, fragment)  # a lunch break without its times
        elif kind == "usual":
            rule.usual = True
        rule.text.append(fragment)
        previous_kind = kind
    if rule.text:
        rules.append(rule)
    # "9:00-17:00（周一至周五）": days written after the hours belong to them.
    merged: list[_Rule] = []
    for rule in rules:
        if not rule.has_hours and merged and not merged[-1].has_days:
            merged[-1].days |= rule.days
            merged[-1].holiday |= rule.holiday
            continue
        if not rule.has_hours:
            raise UnreadableHours(original, NO_HOURS, "".join(rule.text))
        merged.append(rule)
    return merged


def _hours_text(rule: _Rule, selector: str) -> str | None:
    """The OSM rule for one selector ("" = every day), or None when the rule changes nothing."""
    if rule.off:
        return f"{selector} off" if selector else "off"
    if rule.allday and not rule.ranges:
        return f"{selector} 00:00-24:00" if selector else "24/7"
    if rule.ranges:
        ranges = _subtract(rule.ranges, rule.breaks)
        if not selector and ranges == [(0, 24 * 60)]:
            return "24/7"
        times = ",".join(f"{_hhmm(start)}-{_hhmm(end)}" for start, end in ranges)
        return f"{selector} {times}" if selector else times
    return None  # "节假日照常": holidays follow the weekly rules, which OSM does anyway


def normalise_zh_hours(text: str) -> str:
    """The OSM expression of hours written in Chinese; raises UnreadableHours (an InvalidOpeningHours)."""
    prepared = _prepare(text)
    if not prepared:
        return ""
    rules = _rules(_tokens(prepared, text), text)
    weekly: list[str] = []
    holidays: list[str] = []
    for rule in rules:
        if rule.days:
            selector = (
                "" if len(rule.days) == 7 and rule.allday and not rule.ranges else _days_text(rule.days)
            )
            line = _hours_text(rule, selector)
            if line == "Mo-Su 00:00-24:00":
                line = "24/7"
            if line is not None:
                weekly.append(line)
        elif not rule.holiday:
            line = _hours_text(rule, "")
            if line is not None:
                weekly.append(line)
        if rule.holiday:
            line = _hours_text(rule, "PH")
            if line is not None:
                holidays.append(line)
    expression = "; ".join(dict.fromkeys(weekly + holidays))
    if not expression:
        raise UnreadableHours(text, NOTHING_FOUND, text.strip()[:24])
    return expression


def accept_hours(text: str) -> AcceptedHours:
    """Hours as typed anywhere (a sheet, a report, a staff edit) → what to store.

    OSM syntax (after NFKC, so full-width `Ｍｏ-Ｆｒ ０９:００` passes too) is kept as it is; anything else is
    read as Chinese and normalised. Raises InvalidOpeningHours: the OSM parser's error for text without
    Chinese characters, `UnreadableHours` for Chinese text we cannot read.
    """
    stripped = text.strip()
    if not stripped:
        return AcceptedHours("")
    folded = unicodedata.normalize("NFKC", stripped)
    try:
        validate_hours(folded)
        return AcceptedHours(folded)
    except InvalidOpeningHours as osm_error:
        try:
            expression = normalise_zh_hours(stripped)
        except UnreadableHours:
            if _CJK.search(folded) or not re.search(r"[a-z]{2}", folded, re.IGNORECASE):
                raise
            raise osm_error from None
    validate_hours(expression)  # the grammar above only writes valid OSM; a bug here must not be stored
    return AcceptedHours(expression, stripped)
