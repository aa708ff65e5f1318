"""Union staff in the bot: the moderation queue, station lifecycle, stale stations, audit trail, grants.

Every handler asks the services with the user's `Access`; the services refuse what the role or region
does not allow, whatever buttons a client forges.
"""

from __future__ import annotations

import logging
from html import escape
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __

from bot.notify import tell
from bot.services.ratings import RatingService
from bot.services.reports import AlreadyDecided, CaseNotFound, Decision, DecisionResult, ReportService
from bot.services.roles import InvalidGrant, NotAllowed, RoleService
from bot.services.station_admin import InvalidEdit, StationAdminService
from bot.services.stations import StationService
from bot.services.users import UserService
from domain.clock import Clock
from domain.hours import hours_of
from domain.values import Station, StationNotFound, StationStatus, User
from handlers.callbacks import ModAction, ModCb, StaffAction, StaffCb
from handlers.common import own_message, parse_id, safe_edit
from handlers.errors import edit_error_text, grant_error_text
from handlers.filters import plain_text, private_chat
from handlers.views import (
    card_text,
    case_keyboard,
    case_line,
    case_text,
    listed,
    local_datetime,
    queue_keyboard,
    rating_line,
    staff_amenity_keyboard,
    staff_keyboard,
)

log = logging.getLogger(__name__)
PAGE = 8


class StaffForm(StatesGroup):
    close_reason = State()
    hours = State()
    phone = State()


async def _not_allowed_message(message: Message) -> None:
    await message.answer(_("This command is for union staff."))


async def _not_allowed_query(query: CallbackQuery) -> None:
    await query.answer(_("Not allowed."), show_alert=True)


async def _stale_query(query: CallbackQuery) -> None:
    """A button whose message the bot cannot see, or in a chat other than the user's own with the bot."""
    await query.answer(_("This button is out of date."), show_alert=True)


#: Staff actions that answer with a message (or set a step): only in the staff member's private chat.
#: What each of the queue's decision buttons decides.
_DECISIONS = {
    ModAction.APPROVE: Decision.APPROVE,
    ModAction.REJECT: Decision.REJECT,
    ModAction.ASK: Decision.ASK,
}
_REPLYING_ACTIONS = frozenset(
    {
        StaffAction.CLOSE_FOR_GOOD,
        StaffAction.EDIT_HOURS,
        StaffAction.EDIT_PHONE,
        StaffAction.EDIT_AMENITIES,
        StaffAction.TOGGLE_AMENITY,
        StaffAction.AMENITIES_DONE,
        StaffAction.HISTORY,
    }
)


# -- the queue --------------------------------------------------------------------------------------------
async def _queue(reports: ReportService, roles: RoleService, user_id: int, page: int) -> tuple[str, object]:
    access = await roles.access(user_id)
    cases, total = await reports.open_cases(access, limit=PAGE, offset=page * PAGE)
    if not total:
        return _("No open reports in your region. 👍"), None
    lines = [_("<b>Open reports: {count}</b> (oldest first)").format(count=total), ""]
    lines += [case_line(case) for case in cases]
    return "\n\n".join(lines), queue_keyboard(cases, page, (page + 1) * PAGE < total)


async def reports_command(message: Message, reports: ReportService, roles: RoleService) -> None:
    try:
        text, keyboard = await _queue(reports, roles, message.from_user.id, 0)  # type: ignore[union-attr]
    except NotAllowed:
        await _not_allowed_message(message)
        return
    await message.answer(text, reply_markup=keyboard)  # type: ignore[arg-type]


async def queue_paged(
    query: CallbackQuery, callback_data: ModCb, reports: ReportService, roles: RoleService
) -> None:
    message = own_message(query)
    try:
        text, keyboard = await _queue(
            reports, roles, query.from_user.id, max(0, min(callback_data.page, 1000))
        )
    except NotAllowed:
        await _not_allowed_query(query)
        return
    if message is not None:
        await safe_edit(message, text, keyboard)  # type: ignore[arg-type]
    await query.answer()


async def case_viewed(
    query: CallbackQuery, callback_data: ModCb, reports: ReportService, roles: RoleService, default_tz: str
) -> None:
    message = own_message(query)
    if message is None:
        await _stale_query(query)
        return
    try:
        case = await reports.case(callback_data.case, await roles.access(query.from_user.id))
    except (NotAllowed, CaseNotFound):
        await _not_allowed_query(query)
        return
    await query.answer()
    await message.answer(case_text(case, default_tz), reply_markup=case_keyboard(case.id))
    for photo in case.photos:
        await message.answer_photo(photo)


async def case_decided(
    query: CallbackQuery,
    callback_data: ModCb,
    reports: ReportService,
    roles: RoleService,
    bot: Bot,
    i18n: I18n,
    users: UserService,
    clock: Clock,
    default_tz: str,
) -> None:
    decision = _DECISIONS[ModAction(callback_data.action)]
    try:
        result = await reports.decide(
            callback_data.case, decision, await roles.access(query.from_user.id), clock()
        )
    except (NotAllowed, CaseNotFound):
        await _not_allowed_query(query)
        return
    except AlreadyDecided:
        await query.answer(_("Someone already decided this case."), show_alert=True)
        return
    outcome = {
        Decision.APPROVE: _("✅ Approved: the change is live."),
        Decision.REJECT: _("❌ Rejected."),
        Decision.ASK: _("❓ Asked the reporters for details."),
    }[decision]
    await query.answer(outcome)
    message = own_message(query)
    if message is not None:
        keyboard = case_keyboard(result.case.id) if decision is Decision.ASK else None
        await safe_edit(message, case_text(result.case, default_tz) + "\n\n" + outcome, keyboard)
    await tell_reporters(result, bot, i18n, users)


async def tell_reporters(result: DecisionResult, bot: Bot, i18n: I18n, users: UserService) -> None:
    """Each reporter hears the outcome in their own language."""

    def outcome() -> str:
        if result.decision is Decision.APPROVE:
            text = i18n.gettext(
                "✅ Thank you! Your report about {name} was confirmed "
                "and the station's information is updated."
            )
        elif result.decision is Decision.REJECT:
            text = i18n.gettext(
                "Thank you for your report about {name}. "
                "Union staff checked it and left the station as it is."
            )
        else:
            text = i18n.gettext(
                "Union staff need more details about your report on {name}. "
                "Please report it again with a photo or a few words."
            )
        return text.format(name=escape(result.case.station.name))

    for reporter_id in result.reporters:
        locale = await users.locale_of(reporter_id)
        await tell(bot, i18n, reporter_id, locale, outcome, about=f"the outcome of case {result.case.id}")


# -- station lifecycle ------------------------------------------------------------------------------------
async def _staff_card(
    station_code: str,
    admin: StationAdminService,
    ratings: RatingService,
    roles: RoleService,
    user_id: int,
    clock: Clock,
    default_tz: str,
) -> tuple[str, object]:
    access = await roles.access(user_id)
    station = await admin.station(station_code, access)
    tz = station.timezone or default_tz
    now = clock()
    closure = admin.stations.closures.get(station.id, now)
    text = card_text(station, hours_of(station, default_tz), now, ZoneInfo(tz), None, closure=closure)
    text += "\n" + rating_line(await ratings.summary(station.id))
    comments = await ratings.recent_comments(station.id, access, station.region, limit=3)
    for comment in comments:
        text += "\n💬 " + "⭐" * comment.stars + " " + escape(comment.text)
    status = {
        "active": _("active"),
        "temporarily_closed": _("temporarily closed"),
        "closed": _("closed for good"),
    }
    text += "\n" + _("Status: {status}").format(status=status[station.status.value])
    return text, staff_keyboard(station)


async def station_command(
    message: Message,
    command: CommandObject,
    station_admin: StationAdminService,
    ratings: RatingService,
    roles: RoleService,
    clock: Clock,
    default_tz: str,
) -> None:
    code = (command.args or "").strip()
    if not code:
        await message.answer(_("Usage: /station CODE"))
        return
    try:
        text, keyboard = await _staff_card(
            code,
            station_admin,
            ratings,
            roles,
            message.from_user.id,  # type: ignore[union-attr]
            clock,
            default_tz,
        )
    except StationNotFound:
        await message.answer(_("No station with the code {code}.").format(code=escape(code[:64])))
        return
    except NotAllowed:
        await _not_allowed_message(message)
        return
    await message.answer(text, reply_markup=keyboard)  # type: ignore[arg-type]


async def staff_action(
    query: CallbackQuery,
    callback_data: StaffCb,
    station_admin: StationAdminService,
    roles: RoleService,
    state: FSMContext,
    clock: Clock,
    stations: StationService,
    default_tz: str,
) -> None:
    action = callback_data.action
    station_id = callback_data.station
    message = own_message(query)
    if message is None and action in _REPLYING_ACTIONS:
        await _stale_query(query)
        return
    access = await roles.access(query.from_user.id)
    try:
        if action == StaffAction.VERIFY:
            await station_admin.verify(station_id, access, clock())
            await query.answer(_("Marked as verified today."))
        elif action == StaffAction.CLOSE_TEMPORARILY:
            await station_admin.set_status(station_id, StationStatus.TEMPORARILY_CLOSED, access, clock())
            await query.answer(_("Closed temporarily: riders no longer see it."))
        elif action == StaffAction.REOPEN:
            await station_admin.set_status(station_id, StationStatus.ACTIVE, access, clock())
            await query.answer(_("Reopened: riders see it again."))
        elif action in (StaffAction.CLOSE_FOR_GOOD, StaffAction.EDIT_HOURS, StaffAction.EDIT_PHONE):
            # Check the right before asking for input, so a forged button learns nothing.
            await station_admin.history(station_id, access, limit=1)
            prompts = {
                StaffAction.CLOSE_FOR_GOOD: (
                    StaffForm.close_reason,
                    _("Why does the station close for good? Type the reason."),
                ),
                StaffAction.EDIT_HOURS: (
                    StaffForm.hours,
                    _(
                        "Type the new opening hours, e.g. 周一至周五 8:00-18:00，周末休息 "
                        "or Mo-Fr 08:00-18:00; Sa,Su off."
                    ),
                ),
                StaffAction.EDIT_PHONE: (StaffForm.phone, _("Type the new phone number.")),
            }
            form, prompt = prompts[StaffAction(action)]
            await state.set_state(form)
            await state.update_data(staff_station=station_id)
            await query.answer()
            await message.answer(prompt)  # type: ignore[union-attr]
            return
        elif action in (StaffAction.EDIT_AMENITIES, StaffAction.TOGGLE_AMENITY, StaffAction.AMENITIES_DONE):
            await _staff_amenities(query, callback_data, station_admin, access, state, clock)
            return
        elif action == StaffAction.HISTORY:
            entries = await station_admin.history(station_id, access)
            station = await stations.get_by_id(station_id)
            await query.answer()
            await message.answer(_history_text(entries, station_tz(station, default_tz)))  # type: ignore[union-attr]
            return
        else:
            await _not_allowed_query(query)
            return
    except (NotAllowed, StationNotFound):
        await _not_allowed_query(query)
        return
    except InvalidEdit as exc:
        await query.answer(edit_error_text(exc), show_alert=True)
        return


async def _staff_amenities(query, callback_data, station_admin, access, state, clock) -> None:  # type: ignore[no-untyped-def]
    message = own_message(query)
    if message is None:
        await _stale_query(query)
        return
    data = await state.get_data()
    if callback_data.action == StaffAction.EDIT_AMENITIES:
        await station_admin.history(callback_data.station, access, limit=1)  # the right to edit it
        station = await station_admin.stations.get_by_id(callback_data.station)
        current = tuple(station.amenities)
        await state.update_data(staff_amenities={"station": station.id, "chosen": list(current)})
        await query.answer()
        await message.answer(
            _("Amenities of {name}:").format(name=escape(station.name)),
            reply_markup=staff_amenity_keyboard(station, current),
        )
        return
    pending = data.get("staff_amenities")
    if not pending or pending.get("station") != callback_data.station:
        await query.answer(_("This button is out of date."), show_alert=True)
        return
    station = await station_admin.stations.get_by_id(callback_data.station)
    chosen: set[str] = set(pending["chosen"])
    if callback_data.action == StaffAction.TOGGLE_AMENITY:
        chosen ^= {callback_data.value}
        pending["chosen"] = sorted(chosen)
        await state.update_data(staff_amenities=pending)
        await query.answer()
        await safe_edit(message, message.html_text, staff_amenity_keyboard(station, tuple(chosen)))
        return
    await station_admin.edit_amenities(station.id, tuple(chosen), access, clock())
    await state.update_data(staff_amenities=None)
    await query.answer(_("Saved."))
    await safe_edit(message, _("Amenities saved."), None)


async def staff_text_entered(
    message: Message, station_admin: StationAdminService, roles: RoleService, state: FSMContext, clock: Clock
) -> None:
    current = await state.get_state()
    station_id = (await state.get_data()).get("staff_station")
    text = (message.text or "").strip()
    if station_id is None:
        await state.clear()
        return
    access = await roles.access(message.from_user.id)  # type: ignore[union-attr]
    try:
        if current == StaffForm.close_reason.state:
            await station_admin.set_status(station_id, StationStatus.CLOSED, access, clock(), reason=text)
            reply = _("Closed for good. It stays in the records but no longer in results.")
        elif current == StaffForm.hours.state:
            await station_admin.edit_hours(station_id, text, access, clock())
            reply = _("Opening hours saved.")
        else:
            await station_admin.edit_phone(station_id, text, access, clock())
            reply = _("Phone number saved.")
    except InvalidEdit as exc:
        await message.answer(
            _("Not saved: {reason}. Please type it again.").format(reason=edit_error_text(exc))
        )
        return
    except (NotAllowed, StationNotFound):
        await state.clear()
        await _not_allowed_message(message)
        return
    await state.clear()
    await message.answer(reply)


#: Audit actions and changed fields as staff read them; one not listed shows as recorded.
_ACTIONS = {
    "verify": __("verified"),
    "close_temporarily": __("closed temporarily"),
    "reopen": __("reopened"),
    "close": __("closed for good"),
    "edit_hours": __("hours edited"),
    "edit_phone": __("phone edited"),
    "edit_amenities": __("amenities edited"),
    "auto_hide": __("hidden automatically after reports"),
    "auto_restore": __("shown again automatically"),
    "approve_closed_now": __("report approved: closed now"),
    "approve_closed_permanently": __("report approved: closed for good"),
    "approve_amenity_broken": __("report approved: something broken"),
    "approve_wrong_location": __("report approved: wrong location"),
    "approve_wrong_hours": __("report approved: wrong hours"),
    "approve_other": __("report approved"),
}
_FIELDS = {
    "status": __("status"),
    "opening_hours": __("hours"),
    "phone": __("phone"),
    "amenities": __("amenities"),
    "verified_at": __("verified"),
    "lat": __("latitude"),
    "lon": __("longitude"),
}
_STATUSES = {
    "active": __("active"),
    "temporarily_closed": __("temporarily closed"),
    "closed": __("closed for good"),
}


#: Characters of history in one reply, leaving room for the station's name within Telegram's 4,096.
_HISTORY_BUDGET = 3500


def _history_value(field: str, value: object) -> str:
    if field == "status" and isinstance(value, str) and value in _STATUSES:
        return str(_STATUSES[value])
    return escape(str(value))


def station_tz(station: Station, default_tz: str) -> ZoneInfo:
    return ZoneInfo(station.timezone or default_tz)


def _history_text(entries: list, tz: ZoneInfo) -> str:  # type: ignore[type-arg]
    if not entries:
        return _("No changes recorded yet.")
    lines = [_("<b>History</b> (newest first)")]
    for entry in entries:
        who = _("system") if entry.actor_id is None else str(entry.actor_id)
        change = listed(
            f"{_FIELDS[k] if k in _FIELDS else escape(k)}: {_history_value(k, entry.before.get(k))}"
            f" → {_history_value(k, v)}"
            for k, v in entry.after.items()
        )
        action = _ACTIONS[entry.action] if entry.action in _ACTIONS else escape(entry.action)
        line = f"{local_datetime(entry.at, tz)} · {action} · {who}\n   {change}"
        if entry.reason:
            line += f"\n   {escape(entry.reason)}"
        # Whole entries only: a cut inside an entity or a tag would make the reply invalid HTML.
        if sum(len(x) + 1 for x in lines) + len(line) > _HISTORY_BUDGET:
            break
        lines.append(line)
    return "\n".join(lines)


async def history_command(
    message: Message,
    command: CommandObject,
    station_admin: StationAdminService,
    roles: RoleService,
    default_tz: str,
) -> None:
    code = (command.args or "").strip()
    if not code:
        await message.answer(_("Usage: /history CODE"))
        return
    access = await roles.access(message.from_user.id)  # type: ignore[union-attr]
    try:
        station = await station_admin.station(code, access)
        entries = await station_admin.history(station.id, access)
    except StationNotFound:
        await message.answer(_("No station with the code {code}.").format(code=escape(code[:64])))
        return
    except NotAllowed:
        await _not_allowed_message(message)
        return
    await message.answer(
        f"<b>{escape(station.name)}</b> [{escape(station.code)}]\n"
        + _history_text(entries, station_tz(station, default_tz))
    )


async def stale_command(
    message: Message, station_admin: StationAdminService, roles: RoleService, clock: Clock, default_tz: str
) -> None:
    try:
        stale = await station_admin.stale(await roles.access(message.from_user.id), clock())  # type: ignore[union-attr]
    except NotAllowed:
        await _not_allowed_message(message)
        return
    if not stale:
        await message.answer(_("Every station of your region was verified in the last 180 days. 👍"))
        return
    lines = [_("<b>Not verified for 180 days</b>")]
    for station in stale:
        verified = station.verified_at
        tz = station_tz(station, default_tz)
        when = verified.astimezone(tz).date().isoformat() if verified else _("never")
        lines.append(f"<code>{escape(station.code)}</code> {escape(station.name)} · {when}")
    lines.append(_("Open one with /station CODE."))
    await message.answer("\n".join(lines))


async def grant_command(message: Message, command: CommandObject, roles: RoleService, user: User) -> None:
    await _grant_or_revoke(message, command, roles, user, grant=True)


async def revoke_command(message: Message, command: CommandObject, roles: RoleService, user: User) -> None:
    await _grant_or_revoke(message, command, roles, user, grant=False)


async def _grant_or_revoke(
    message: Message, command: CommandObject, roles: RoleService, user: User, grant: bool
) -> None:
    access = await roles.access(user.id)
    if not access.is_admin:
        await message.answer(_("This command is for admins."))
        return
    parts = (command.args or "").split()
    target = parse_id(parts[0]) if len(parts) in (2, 3) else None
    if target is None:
        await message.answer(
            _("Usage: /grant USER_ID volunteer|staff|admin [REGION] — /revoke USER_ID ROLE [REGION]")
        )
        return
    role, region = parts[1], parts[2] if len(parts) == 3 else ""
    try:
        if grant:
            await roles.grant(target, role, region, by=access)
            await message.answer(_("Granted."))
        else:
            removed = await roles.revoke(target, role, region or None, by=access)
            await message.answer(_("Revoked.") if removed else _("Nothing to revoke."))
    except InvalidGrant as exc:
        await message.answer(grant_error_text(exc))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="moderation")
    router.message.filter(private_chat)
    router.message.register(reports_command, Command("reports"))
    router.message.register(station_command, Command("station"))
    router.message.register(history_command, Command("history"))
    router.message.register(stale_command, Command("stale"))
    router.message.register(grant_command, Command("grant"))
    router.message.register(revoke_command, Command("revoke"))
    router.callback_query.register(queue_paged, ModCb.filter(F.action == ModAction.PAGE))
    router.callback_query.register(case_viewed, ModCb.filter(F.action == ModAction.VIEW))
    router.callback_query.register(
        case_decided, ModCb.filter(F.action.in_({ModAction.APPROVE, ModAction.REJECT, ModAction.ASK}))
    )
    router.callback_query.register(staff_action, StaffCb.filter())
    router.message.register(
        staff_text_entered,
        plain_text,
        StateFilter(StaffForm.close_reason, StaffForm.hours, StaffForm.phone),
    )
    return router
