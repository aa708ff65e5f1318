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
from domain.hours_zh import HOURS_EXAMPLE_OSM, HOURS_EXAMPLE_ZH, UnreadableHours
from domain.messages import hours_error_sentences
from domain.values import InvalidOpeningHours


def hours_error_text(error: InvalidOpeningHours) -> str:
    """Where and why typed opening hours cannot be read, escaped."""
    if isinstance(error, UnreadableHours):  # Chinese we cannot read: the piece at fault, forms that work
        reason = escape(_(error.reason).format(fragment=error.fragment))
        example = _("For example: {chinese} or {osm}").format(
            chinese=f"<code>{escape(HOURS_EXAMPLE_ZH)}</code>",
            osm=f"<code>{escape(HOURS_EXAMPLE_OSM)}</code>",
        )
        return f"{reason}\n{example}"
    # The same words as an import report's (domain/messages.py), escaped for HTML.
    return "\n".join(escape(sentence.translated(_), quote=False) for sentence in hours_error_sentences(error))


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
        return hours_error_text(error.hours_error).rstrip(".。")  # the sentence around it ends it
    if error.code == InvalidEdit.REASON_MISSING:
        return _("closing a station for good needs a reason")
    if error.code == InvalidEdit.PHONE:
        return _("a phone number has 3 to 32 digits, spaces, +, - or brackets")
    return _("this amenity is unknown")
