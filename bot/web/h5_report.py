"""The H5 page's strings for reporting a problem, following one's reports and the union's notices
(`bot/web/static/report.js`, `notices.js`). `bot/web/h5.py` serves them with the page's other strings;
report kinds, refusal reasons and thanks reuse the bot's msgids, so one translation serves both."""

from __future__ import annotations

from domain.text import N_

REPORT_STRINGS: dict[str, str] = {
    "report": N_("Report a problem"),
    "report_title": N_("Report a problem with {station}"),
    "report_kind": N_("What is wrong?"),
    "kind_closed_now": N_("🚪 Closed now"),
    "kind_closed_permanently": N_("⛔ Closed for good"),
    "kind_amenity_broken": N_("🔧 Something is broken"),
    "kind_wrong_location": N_("📍 Wrong location"),
    "kind_wrong_hours": N_("🕘 Wrong opening hours"),
    "kind_other": N_("💬 Something else"),
    "report_amenity": N_("What is broken?"),
    "report_hours": N_("The right opening hours"),
    "report_hours_hint": N_("For example 周一至周五 9:00-18:00 or Mo-Fr 09:00-18:00"),
    "report_location": N_("Where the station really is (latitude, longitude)"),
    "report_text": N_("Anything else union staff should know (optional)"),
    "report_text_required": N_("Describe the problem"),
    "report_send": N_("Send"),
    "report_cancel": N_("Cancel"),
    "report_sending": N_("Sending…"),
    "report_thanks": N_("🙏 Thank you! Union staff will check it."),
    "report_refused": N_("This report cannot be sent: {reason}"),
    "reason_kind": N_("this kind of problem is unknown"),
    "reason_unknown_amenity": N_("this amenity is unknown"),
    "reason_amenity_not_listed": N_("the station does not list this amenity"),
    "reason_location": N_("the right location is missing or invalid"),
    "reason_hours_missing": N_("the right opening hours are missing"),
    "reason_hours": N_("the opening hours cannot be read"),
    "reason_too_long": N_("the text is longer than {count} characters"),
    "reason_text_missing": N_("please describe the problem"),
    "report_unknown_station": N_("This station is no longer listed."),
    "report_too_soon": N_("You reported this station less than an hour ago. Thank you!"),
    "report_limit": N_("You sent as many reports today as one person can. Thank you!"),
    "report_rate_limited": N_("Too many reports from this connection. Please try again later."),
    "my_reports": N_("Your reports"),
    "refresh": N_("Refresh"),
    "forget_reports": N_("Forget them on this phone"),
    "forget_confirm": N_(
        "Forget your reports on this phone? Union staff keep them, but nothing will tie them to you any more "
        "and this page will stop following them."
    ),
    "forgotten": N_("Forgotten. Nothing ties those reports to you any more."),
    "forget_failed": N_("They could not be forgotten just now. Please try again."),
    "status_open": N_("Waiting for union staff"),
    "status_needs_info": N_("Union staff need more details"),
    "status_approved": N_("Confirmed: the station was updated"),
    "status_rejected": N_("Not confirmed by union staff"),
    "notices": N_("Notices from the union"),
    "dismiss": N_("Dismiss"),
}
