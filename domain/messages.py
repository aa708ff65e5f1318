"""Messages that an edge says in its user's language: English text plus the msgid and its parameters.

A `Text` is a `str` holding the English sentence (what logs, tests and the command line in English see),
and remembers its msgid and parameters so that `translated(gettext)` renders it in any catalogue language.
Parameters that are `Text` are translated too; a tuple of them is a list of alternatives, joined " / ".
Pure: the msgids are marked with the no-op `N_` and extracted from here; gettext is the caller's.

`hours_error_sentences` words an `InvalidOpeningHours` of the OSM parser this way, so that the bot, the
command line and an import report all say the same thing about the same mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from domain.hours import HoursProblem
from domain.values import InvalidOpeningHours

__all__ = ["EXPECTED_WORDS", "N_", "Gettext", "Text", "hours_error_sentences", "translated"]

Gettext = Callable[[str], str]


def N_(message: str) -> str:
    """Marks a msgid for extraction (`pybabel extract -k N_`); it is translated later, by the edge."""
    return message


def _english(value: Any) -> Any:
    return " / ".join(value) if isinstance(value, tuple) else value


class Text(str):
    """A message: English as a `str`, plus the msgid and parameters for `translated`."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Text:
        self = super().__new__(cls, msgid.format(**{k: _english(v) for k, v in params.items()}))
        self.msgid = msgid
        self.params = params
        return self

    def translated(self, gettext: Gettext) -> str:
        params = {k: _translated_value(v, gettext) for k, v in self.params.items()}
        return gettext(self.msgid).format(**params)


def _translated_value(value: Any, gettext: Gettext) -> Any:
    if isinstance(value, tuple):
        return " / ".join(dict.fromkeys(translated(item, gettext) for item in value))
    return translated(value, gettext) if isinstance(value, str) else value


def translated(text: str, gettext: Gettext) -> str:
    """`text` in the language of `gettext` when it is a `Text`; as it is otherwise."""
    return text.translated(gettext) if isinstance(text, Text) else text


#: What the hours parser expected, by grammar rule (`domain.hours.GRAMMAR_WORDS`); rules not listed are
#: left out of the sentence rather than shown by their internal name.
EXPECTED_WORDS: MappingProxyType[str, str] = MappingProxyType(
    {
        "EOI": N_("the end of the text"),
        "any_rule_separator": N_("a rule separator (; , ||)"),
        "normal_rule_separator": N_("a rule separator (;)"),
        "rules_modifier": N_("open, closed, off or unknown"),
        "always_open": N_("24/7"),
        "small_range_selectors": N_("weekdays or times"),
        "week_selector": N_("a week number"),
        "monthday_range": N_("a date"),
        "variable_date": N_("a date"),
        "year": N_("a year"),
        "month": N_("a month"),
        "comment": N_("a comment in double quotes"),
        "timespan": N_("a time range (HH:MM-HH:MM)"),
        "extended_time": N_("a time (HH:MM)"),
        "holiday": N_("PH or SH"),
        "wday": N_("a weekday (Mo Tu We Th Fr Sa Su)"),
    }
)


def hours_error_sentences(error: InvalidOpeningHours) -> tuple[Text, ...]:
    """Where and why OSM opening hours cannot be read: a sentence, and a hint when the text does not look
    like opening hours at all (not escaped)."""
    if error.code == HoursProblem.PH_OFFSET:
        return (Text(N_("PH with a day offset (like “PH +1 day”) is not supported.")),)
    if error.code == HoursProblem.PH_WITH_WEEKDAYS:
        return (
            Text(N_("“PH” directly followed by weekdays is not supported; write “PH,Mo-Fr” or two rules.")),
        )
    if error.code == HoursProblem.PH_POSITION:
        return (Text(N_("PH is not supported in this position.")),)
    if error.code != HoursProblem.SYNTAX:
        return (Text(N_("this is not in opening hours syntax.")),)
    details = error.details
    if details.get("column"):
        where = Text(
            N_("at “{text}” (character {column})"),
            text=str(details.get("token", "")),
            column=details["column"],
        )
    else:
        where = Text(N_("at the end"))
    words = tuple(
        Text(EXPECTED_WORDS[rule])
        for rule in dict.fromkeys(details.get("expected", ()))
        if rule in EXPECTED_WORDS
    )
    if details.get("unexpected"):
        sentence = Text(N_("{where}: this is not allowed here."), where=where)
    elif words:
        sentence = Text(N_("{where}: expected {what}."), where=where, what=tuple(dict.fromkeys(words)))
    else:
        sentence = Text(N_("{where}: this cannot be read."), where=where)
    if details.get("free_text"):
        hint = Text(N_('Free text must be written as a comment in double quotes, e.g. "by appointment".'))
        return sentence, hint
    return (sentence,)
