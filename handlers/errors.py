"""The domain errors a user can trigger, in the user's language and escaped for an HTML reply.

Services raise errors with a code and an English reason (for logs and the command line); the bot words
them here. A code this module does not know yet gets a general sentence, never the English reason.
"""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __

from bot.services.ratings import MAX_COMMENT, InvalidRating
from bot.services.reports import MAX_TEXT, InvalidReport
from bot.services.roles import InvalidGrant
from bot.services.station_admin import InvalidEdit
from domain.hours import HoursProblem
from domain.hours_zh import HOURS_EXAMPLE_OSM, HOURS_EXAMPLE_ZH, UnreadableHours
from domain.values import InvalidOpeningHours

#: What the hours parser expected, by grammar rule (`domain.hours.GRAMMAR_WORDS`); rules not
#: listed are left out of the sentence rather than shown by their internal name.
_EXPECTED = {
    "EOI": __("the end of the text"),
    "any_rule_separator": __("a rule separator (; , ||)"),
    "normal_rule_separator": __("a rule separator (;)"),
    "rules_modifier": __("open, closed, off or unknown"),
    "always_open": __("24/7"),
    "small_range_selectors": __("weekdays or times"),
    "week_selector": __("a week number"),
    "monthday_range": __("a date"),
    "variable_date": __("a date"),
    "year": __("a year"),
    "month": __("a month"),
    "comment": __("a comment in double quotes"),
    "timespan": __("a time range (HH:MM-HH:MM)"),
    "extended_time": __("a time (HH:MM)"),
    "holiday": __("PH or SH"),
    "wday": __("a weekday (Mo Tu We Th Fr Sa Su)"),
}


def hours_error_text(error: InvalidOpeningHours) -> str:
    """Where and why typed opening hours cannot be read, escaped."""
    if isinstance(error, UnreadableHours):  # Chinese we cannot read: the piece at fault, forms that work
        reason = escape(_(error.reason).format(fragment=error.fragment))
        example = _("For example: {chinese} or {osm}").format(
            chinese=f"<code>{escape(HOURS_EXAMPLE_ZH)}</code>",
            osm=f"<code>{escape(HOURS_EXAMPLE_OSM)}</code>",
        )
        return f"{reason}\n{example}"
    if error.code == HoursProblem.PH_OFFSET:
        return _("PH with a day offset (like “PH +1 day”) is not supported.")
    if error.code == HoursProblem.PH_WITH_WEEKDAYS:
        return _("“PH” directly followed by weekdays is not supported; write “PH,Mo-Fr” or two rules.")
    if error.code == HoursProblem.PH_POSITION:
        return _("PH is not supported in this position.")
    if error.code != HoursProblem.SYNTAX:
        return _("this is not in opening hours syntax.")
    details = error.details
    token = escape(str(details.get("token", "")))
    if details.get("column"):
        where = _("at “{text}” (character {column})").format(text=token, column=details["column"])
    else:
        where = _("at the end")
    if details.get("unexpected"):
        sentence = _("{where}: this is not allowed here.").format(where=where)
    else:
        words = [str(_EXPECTED[rule]) for rule in details.get("expected", ()) if rule in _EXPECTED]
        words = list(dict.fromkeys(words))
        if words:
            sentence = _("{where}: expected {what}.").format(where=where, what=" / ".join(words))
        else:
            sentence = _("{where}: this cannot be read.").format(where=where)
    if details.get("free_text"):
        sentence += "\n" + _(
            'Free text must be written as a comment in double quotes, e.g. "by appointment".'
        )
    return sentence


def rating_error_text(error: InvalidRating) -> str:
    if error.code == InvalidRating.TOO_LONG:
        return _("A comment has at most {count} characters.").format(count=MAX_COMMENT)
    if error.code == InvalidRating.NOT_RATED:
        return _("Please rate the station first.")
    if error.code == InvalidRating.NO_STATION:
        return _("This station is no longer listed.")
    return _("A rating is 1 to 5 stars.")


def report_error_text(error: InvalidReport) -> str:
    """The reason part of "This report cannot be sent: {reason}"."""
    if error.code == InvalidReport.HOURS and error.hours_error is not None:
        return hours_error_text(error.hours_error)
    texts = {
        InvalidReport.UNKNOWN_AMENITY: __("this amenity is unknown"),
        InvalidReport.AMENITY_NOT_LISTED: __("the station does not list this amenity"),
        InvalidReport.LOCATION: __("the right location is missing or invalid"),
        InvalidReport.HOURS_MISSING: __("the right opening hours are missing"),
        InvalidReport.HOURS: __("the opening hours cannot be read"),
        InvalidReport.TOO_LONG: __("the text is longer than {count} characters"),
        InvalidReport.TEXT_MISSING: __("please describe the problem"),
    }
    text = texts.get(error.code, __("this kind of problem is unknown"))
    return str(text).format(count=MAX_TEXT)


def grant_error_text(error: InvalidGrant) -> str:
    if error.code == InvalidGrant.STAFF_REGION:
        return _("Staff need a region: an adcode prefix of 2, 4 or 6 digits, e.g. 44 or 4401.")
    if error.code == InvalidGrant.NO_REGION:
        return _("Volunteers and admins take no region.")
    return _("Unknown role: volunteer, staff or admin.")


def edit_error_text(error: InvalidEdit) -> str:
    """The reason part of "Not saved: {reason}. Please type it again."."""
    if error.code == InvalidEdit.HOURS and error.hours_error is not None:
        return hours_error_text(error.hours_error)
    if error.code == InvalidEdit.REASON_MISSING:
        return _("closing a station for good needs a reason")
    if error.code == InvalidEdit.PHONE:
        return _("a phone number has 3 to 32 digits, spaces, +, - or brackets")
    return _("this amenity is unknown")
