"""`yizhan …`: the command line of staff and operators (also `python -m bot`).

Each sub-command parses its arguments, opens the core through the composition root, calls one service
and prints. Messages go through gettext in the terminal's language (Simplified Chinese when unset).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.i18n import LOCALES, environment_locale, translator
from bot.services.nearby import NearbyResult, NearbyService, nearby_json
from domain.demand import K_ANONYMITY
from domain.values import AMENITY_KEYS, CRS, GeoPoint, InvalidLocation, YizhanError

if TYPE_CHECKING:
    from bot.app import Core

_ = translator(environment_locale()).gettext
log = logging.getLogger("yizhan")


class Progress:
    """One line on stderr that rewrites itself on a terminal and prints every 10% elsewhere."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        elapsed = time.monotonic() - self.started
        line = f"{self.label}: {done:,}/{total:,} ({percent}%) {elapsed:.1f} s"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
            self.stream.flush()
        elif percent // 10 != self._last_decile:
            self._last_decile = percent // 10
            self.stream.write(line + "\n")
            self.stream.flush()


def _parse_at(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("not an ISO 8601 date and time: {value}").format(value=value)
        ) from None
    if at.tzinfo is None:
        from zoneinfo import ZoneInfo

        at = at.replace(tzinfo=ZoneInfo(Settings().default_tz))
    return at


def _amenity(value: str) -> str:
    if value not in AMENITY_KEYS:
        raise argparse.ArgumentTypeError(
            _("unknown amenity {value}; one of: {keys}").format(value=value, keys=", ".join(AMENITY_KEYS))
        )
    return value


class PortUnavailable(YizhanError):
    """The address a service command would listen on cannot be had; the message says so in one line."""


def unavailable(host: str, port: int, error: OSError) -> PortUnavailable:
    if error.errno == errno.EADDRINUSE:
        return PortUnavailable(
            _("{host}:{port} is already in use by another program; stop it or choose another --port").format(
                host=host, port=port
            )
        )
    return PortUnavailable(
        _("cannot listen on {host}:{port} ({reason}); choose another --host or --port").format(
            host=host, port=port, reason=error.strerror or error
        )
    )


def ensure_port_free(host: str, port: int) -> None:
    """Bind host:port for a moment, as the server will (every address `host` resolves to, SO_REUSEADDR), so
    that a busy port is reported before the seconds of loading that come first. Port 0 is always free."""
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise unavailable(host, port, exc) from None
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise unavailable(host, port, exc) from None


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.1, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yizhan", description=_("yizhan: find the union service stations for outdoor workers")
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=_("log more"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stations = commands.add_parser("stations", help=_("import, export and seed stations"))
    station_cmds = stations.add_subparsers(dest="stations_command", required=True, metavar="ACTION")
    imp = station_cmds.add_parser("import", help=_("import stations from CSV, GeoJSON or XLSX"))
    imp.add_argument("path", type=Path, help=_("the file to import (.csv, .geojson, .json or .xlsx)"))
    imp.add_argument(
        "--crs",
        choices=[c.value for c in CRS],
        default=CRS.WGS84.value,
        help=_("coordinate system of the file (default: wgs84)"),
    )
    imp.add_argument("--dry-run", action="store_true", help=_("check and count, change nothing"))
    imp.add_argument(
        "--lang",
        choices=LOCALES,
        help=_("language of the messages (default: the language of the file's header)"),
    )
    imp.add_argument(
        "--strict",
        action="store_true",
        help=_("reject rows whose position lies outside China or at sea (a warning otherwise)"),
    )
    template = station_cmds.add_parser(
        "template",
        help=_("write an import template: the header, two example rows and what each column takes"),
    )
    template.add_argument(
        "--lang", choices=LOCALES, help=_("language of the header and the notes (default: the terminal's)")
    )
    template.add_argument(
        "--format", choices=["xlsx", "csv"], default="xlsx", help=_("file format (default: xlsx)")
    )
    template.add_argument(
        "--output", type=Path, help=_("file to write (default: stations-template.xlsx or .csv, here)")
    )
    exp = station_cmds.add_parser("export", help=_("export every station"))
    exp.add_argument(
        "--format", choices=["csv", "geojson"], default="csv", help=_("file format (default: csv)")
    )
    exp.add_argument("--output", type=Path, help=_("file to write (default: standard output)"))
    seed = station_cmds.add_parser(
        "seed",
        help=_("add the synthetic national data set (invented stations, for trying and measuring)"),
        description=_(
            "Adds a deterministic synthetic national network: invented stations, none of them real, with "
            "codes GH + the adcode of the district each lies in + a number, named after that district. "
            "Stations that did not come from this command (imported, or the demo's DEMO… stations) are "
            "never overwritten: their codes are skipped and reported."
        ),
    )
    seed.add_argument(
        "--count",
        type=int,
        default=186_100,
        help=_("how many stations (default: %(default)s, the national count)"),
    )
    seed.add_argument(
        "--seed",
        type=int,
        default=2024,
        help=_("random seed; the same seed gives the same stations (default: %(default)s)"),
    )

    nearby = commands.add_parser("nearby", help=_("the nearest open stations to a point"))
    nearby.add_argument("lat", type=float, help=_("latitude in degrees, e.g. 23.1291"))
    nearby.add_argument("lon", type=float, help=_("longitude in degrees, e.g. 113.2644"))
    nearby.add_argument("--k", type=int, default=5, help=_("how many stations (default: %(default)s)"))
    nearby.add_argument(
        "--amenity",
        type=_amenity,
        action="append",
        default=[],
        metavar="KEY",
        help=_("only stations with this amenity; repeat for several (keys: {keys})").format(
            keys=", ".join(AMENITY_KEYS)
        ),
    )
    nearby.add_argument("--at", type=_parse_at, help=_("instant to evaluate opening hours at (default: now)"))
    nearby.add_argument(
        "--crs",
        choices=[c.value for c in CRS],
        default=CRS.WGS84.value,
        help=_("coordinate system of LAT and LON (default: wgs84, as GPS and Telegram give)"),
    )
    nearby.add_argument(
        "--include-closed", action="store_true", help=_("also stations closed now or temporarily closed")
    )
    nearby.add_argument("--json", action="store_true", help=_("machine-readable output"))

    run = commands.add_parser("run", help=_("run the bot: polling, or webhook when WEBHOOK_URL is set"))
    run.add_argument(
        "--host", default="0.0.0.0", help=_("webhook mode: address to listen on (default: %(default)s)")
    )
    run.add_argument(
        "--port", type=int, default=8080, help=_("webhook mode: port to listen on (default: %(default)s)")
    )
    serve = commands.add_parser("serve", help=_("the web app alone: API v1, the H5 page, /healthz, /metrics"))
    serve.add_argument("--host", default="127.0.0.1", help=_("address to listen on (default: %(default)s)"))
    serve.add_argument(
        "--port", type=int, default=8080, help=_("port to listen on (default: %(default)s; 0: any free port)")
    )
    commands.add_parser("worker", help=_("deliver announcements in a process of its own"))
    demo = commands.add_parser(
        "demo", help=_("the whole service on this machine, no Telegram account needed")
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help=_("address of the chat page (default: %(default)s)")
    )
    demo.add_argument(
        "--port", type=int, default=8080, help=_("port of the chat page (default: %(default)s)")
    )

    admin = commands.add_parser("admin", help=_("grant and revoke roles; the staff console's accounts"))
    admin_cmds = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    for action, help_text in (("grant", _("grant a role")), ("revoke", _("revoke a role"))):
        sub = admin_cmds.add_parser(action, help=help_text)
        sub.add_argument("telegram_id", type=int, help=_("the person's numeric Telegram id"))
        sub.add_argument("--role", required=True, choices=["volunteer", "staff", "admin"], help=_("the role"))
        sub.add_argument("--region", default=None, help=_("adcode prefix for staff, e.g. 44 or 4401"))
    add_user = admin_cmds.add_parser(
        "add-user", help=_("create a staff console account (the password is typed twice)")
    )
    add_user.add_argument("username", help=_("the login name: letters, digits and _ . @ -"))
    add_user.add_argument("--role", required=True, choices=["staff", "admin"], help=_("the role"))
    add_user.add_argument("--region", default=None, help=_("adcode prefix for staff, e.g. 44 or 4401"))
    add_user.add_argument(
        "--telegram-id", type=int, default=None, help=_("link the account to this Telegram id at once")
    )
    add_user.add_argument(
        "--setup-link",
        action="store_true",
        help=_("print a one-time link (valid 24 h) where the person chooses the password"),
    )
    passwd = admin_cmds.add_parser("passwd", help=_("set a console account's password (its sessions end)"))
    passwd.add_argument("username", help=_("the console account"))
    passwd.add_argument(
        "--setup-link", action="store_true", help=_("print a new one-time setup link instead of asking")
    )
    for action, help_text in (
        ("disable", _("disable a console account (its sessions end)")),
        ("enable", _("enable a console account again")),
    ):
        sub = admin_cmds.add_parser(action, help=help_text)
        sub.add_argument("username", help=_("the console account"))
    admin_cmds.add_parser("list", help=_("list the console accounts with their roles"))
    link = admin_cmds.add_parser(
        "link", help=_("link a console account to a Telegram id: one role and one audit identity in both")
    )
    link.add_argument("username", help=_("the console account"))
    link.add_argument("telegram_id", type=int, help=_("the person's numeric Telegram id"))

    add_analytics_parser(commands)

    db = commands.add_parser("db", help=_("database schema"))
    db_cmds = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_cmds.add_parser("upgrade", help=_("migrate the database to the newest schema"))
    return parser


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(_("not a date (YYYY-MM-DD): {value}").format(value=value)) from None


def add_analytics_parser(commands: Any) -> argparse.ArgumentParser:
    """`yizhan analytics REPORT`: each report takes the options of `analytics_options`."""
    analytics = commands.add_parser(
        "analytics",
        help=_(
            "reports for union staff: where riders search, where they find nothing, where to add stations"
        ),
        description=_(
            "Reports from the search counters: searches per coarse cell (about 0.7 km²), never a person or "
            "a position; a cell with fewer than 5 searches in the period is never shown or exported."
        ),
    )
    reports = analytics.add_subparsers(dest="analytics_command", required=True, metavar="REPORT")
    analytics_options(
        reports.add_parser("demand", help=_("searches per cell, by day and night, channel and distance"))
    )
    analytics_options(
        reports.add_parser(
            "gaps",
            help=_(
                "cells where the nearest open station was beyond walking distance, by day and night and "
                "by amenity"
            ),
        )
    )
    suggest = reports.add_parser(
        "suggest", help=_("where N new stations would serve the most unmet searches of a region")
    )
    analytics_options(suggest)
    suggest.add_argument(
        "-n", type=int, default=5, help=_("how many stations to place (default: %(default)s)")
    )
    suggest.add_argument(
        "--candidates",
        type=Path,
        metavar="FILE",
        help=_("CSV of candidate host sites (columns name, lat, lon); default: the gap cells' centres"),
    )
    stations = reports.add_parser(
        "stations",
        help=_(
            "each station's card views, navigation and call taps, ratings, closure reports and days "
            "since verified; those that fail or serve least first"
        ),
        description=_(
            "The station evaluation of a region: counts per station (never a rider), ratings and closure "
            "reports of the period, ranked so that the stations with the weightiest concerns (a confirmed "
            "closure, low ratings, no use, not verified for 180 days) and the least use come first."
        ),
    )
    stations.add_argument(
        "--region", required=True, help=_("adcode prefix of the area, e.g. 44 (a province) or 4401 (a city)")
    )
    stations.add_argument(
        "--since", type=_parse_date, help=_("first day of the period (default: 364 days before its last)")
    )
    stations.add_argument("--until", type=_parse_date, help=_("last day of the period (default: today)"))
    stations.add_argument(
        "--format",
        choices=["table", "csv", "xlsx"],
        help=_("output format (default: from the --out file's extension, else table)"),
    )
    stations.add_argument(
        "--out", type=Path, metavar="FILE", help=_("file to write (default: standard output)")
    )
    return analytics


def analytics_options(report: argparse.ArgumentParser) -> None:
    report.add_argument(
        "--region", default="", help=_("adcode prefix of the area, e.g. 44 (a province) or 4401 (a city)")
    )
    report.add_argument(
        "--since", type=_parse_date, help=_("first day of the period (default: 29 days before its last)")
    )
    report.add_argument("--until", type=_parse_date, help=_("last day of the period (default: today)"))
    report.add_argument(
        "--format",
        choices=["table", "csv", "xlsx", "geojson"],
        help=_("output format (default: from the --out file's extension, else table)"),
    )
    report.add_argument(
        "--out", type=Path, metavar="FILE", help=_("file to write (default: standard output)")
    )


def report_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = args.out.suffix.lower().lstrip(".") if args.out else ""
    return {"csv": "csv", "xlsx": "xlsx", "geojson": "geojson", "json": "geojson"}.get(suffix, "table")


def write_analytics(
    args: argparse.Namespace,
    columns: list[str],
    rows: list[list[Any]],
    geometry: Callable[[list[Any]], dict[str, Any]] | None,
) -> None:
    """The report's rows in the format asked, to --out or standard output."""
    from bot.services.analytics import write_report

    fmt = report_format(args)
    binary = fmt == "xlsx"
    if args.out:
        with args.out.open(
            "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})
        ) as out:
            write_report(columns, rows, fmt, out, geometry=geometry)
        print(_("{count} rows written to {path}").format(count=len(rows), path=args.out), file=sys.stderr)
    elif binary:
        write_report(columns, rows, fmt, sys.stdout.buffer, geometry=geometry)
    else:
        write_report(columns, rows, fmt, sys.stdout, geometry=geometry)


async def cmd_analytics_stations(args: argparse.Namespace) -> int:
    from bot.app import open_core
    from bot.services.evaluation import InvalidPeriod, table_rows

    region = args.region.strip()
    if not re.fullmatch(r"[0-9]{2}|[0-9]{4}|[0-9]{6}", region):
        print(
            _("error: {message}").format(message=_("--region is 2, 4 or 6 digits of an adcode, e.g. 4401")),
            file=sys.stderr,
        )
        return 2
    async with open_core(load_index=False) as core:
        try:
            report = await core.evaluation.evaluate(
                region, datetime.now(UTC), since=args.since, until=args.until
            )
        except InvalidPeriod:
            print(_("error: {message}").format(message=_("--since is after --until")), file=sys.stderr)
            return 2
    columns, rows = table_rows(report, _)
    write_analytics(args, columns, rows, None)
    print(
        _("{count} stations of {region} ({since} to {until})").format(
            count=len(report.stations), region=region, since=report.since, until=report.until
        ),
        file=sys.stderr,
    )
    return 0


async def cmd_analytics(args: argparse.Namespace) -> int:
    from bot.services import analytics

    try:
        return await _analytics_report(args)
    except analytics.AnalyticsError as exc:
        print(_("error: {message}").format(message=_(exc.template).format(**exc.params)), file=sys.stderr)
        return 1


async def _analytics_report(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from bot.app import open_core
    from bot.services import analytics

    if args.analytics_command == "stations":
        return await cmd_analytics_stations(args)
    settings = Settings()
    today = datetime.now(ZoneInfo(settings.default_tz)).date()
    candidates = None
    if getattr(args, "candidates", None) is not None:
        candidates = analytics.read_candidates(args.candidates)
    async with open_core(settings, load_index=False) as core:
        service = core.demand
        period = service.period(args.since, args.until, today)
        name = service.region_name
        if args.analytics_command == "suggest":
            suggested = await service.suggest(args.region, period, args.n, candidates)
            columns, rows = analytics.suggestion_rows(suggested, name)
            write_analytics(args, columns, rows, lambda row: analytics.point_geometry(row[2], row[3]))
            print(
                _(
                    "{count} sites cover {share:.0%} of the {unmet} unmet searches of {region} "
                    "({since} to {until}; walkable: {walkable} m; {candidates} candidate sites)"
                ).format(
                    count=len(suggested.suggestions),
                    share=suggested.suggestions[-1].cumulative_share if suggested.suggestions else 0.0,
                    unmet=suggested.unmet_total,
                    region=args.region,
                    since=period.since,
                    until=period.until,
                    walkable=suggested.walkable_m,
                    candidates=suggested.candidates,
                ),
                file=sys.stderr,
            )
            if suggested.outside_region:
                print(
                    _("{count} candidate sites lie outside the region and were left out").format(
                        count=suggested.outside_region
                    ),
                    file=sys.stderr,
                )
            return 0
        if args.analytics_command == "demand":
            report = await service.demand(args.region, period)
            columns, rows = analytics.demand_rows(report, name)
        else:
            report = await service.gaps(args.region, period)
            columns, rows = analytics.gap_rows(report, name)
        write_analytics(args, columns, rows, lambda row: analytics.cell_polygon(row[0]))
        print(
            _(
                "{count} cells ({since} to {until}); {hidden} cells with fewer than {k} searches "
                "are not shown"
            ).format(
                count=len(rows),
                since=period.since,
                until=period.until,
                hidden=report.hidden_cells,
                k=K_ANONYMITY,
            ),
            file=sys.stderr,
        )
    return 0


async def cmd_import(core: Any, args: argparse.Namespace) -> int:
    from storage.importers import ImportFileError, translated

    _ = translator(args.lang or environment_locale()).gettext
    try:
        report = await core.stations.import_file(
            args.path,
            CRS(args.crs),
            dry_run=args.dry_run,
            progress=Progress(_("reading")),
            strict=args.strict,
        )
    except ImportFileError as exc:
        print(_("error: {message}").format(message=exc.translated(_)), file=sys.stderr)
        return 1
    # A clerk reads the report in the language of the sheet, unless --lang says otherwise.
    _ = translator(args.lang or report.lang).gettext
    for warning in report.warnings:
        print(_("warning: {warning}").format(warning=translated(warning, _)), file=sys.stderr)
    for error in report.errors:
        print(error.translated(_), file=sys.stderr)
    summary = _(
        "{total} rows: {inserted} new, {updated} updated, {unchanged} unchanged, {rejected} rejected"
    ).format(
        total=report.total_rows,
        inserted=report.inserted,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected=report.rejected,
    )
    if report.dry_run:
        summary += " " + _("(dry run: nothing was written)")
    print(summary)
    return 1 if report.errors else 0


def cmd_template(args: argparse.Namespace) -> int:
    from storage.template import write_template

    lang = args.lang or environment_locale()
    path = args.output or Path(f"stations-template.{args.format}")
    try:
        write_template(path, lang, args.format, translator(lang).gettext)
    except OSError as exc:
        print(_("cannot write {path}: {error}").format(path=path, error=exc.strerror or exc), file=sys.stderr)
        return 1
    print(_("template written to {path}").format(path=path), file=sys.stderr)
    return 0


async def cmd_stations(args: argparse.Namespace) -> int:
    from bot.app import open_core

    if args.stations_command == "template":
        return cmd_template(args)  # needs no database
    async with open_core(load_index=False) as core:
        if args.stations_command == "import":
            return await cmd_import(core, args)
        if args.stations_command == "export":
            if args.output:
                with args.output.open("w", encoding="utf-8", newline="") as out:
                    count = await core.stations.export(out, args.format)
                print(
                    _("{count} stations written to {path}").format(count=count, path=args.output),
                    file=sys.stderr,
                )
            else:
                await core.stations.export(sys.stdout, args.format)
            return 0
        if args.stations_command == "seed":
            if args.count <= 0:
                print(_("--count must be positive"), file=sys.stderr)
                return 2
            report = await core.stations.seed(args.count, args.seed, progress=Progress(_("generating")))
            if report.skipped:
                print(
                    _(
                        "{count} codes skipped: stations that did not come from the seed hold them "
                        "(e.g. {codes}); they were left as they are"
                    ).format(count=len(report.skipped), codes=", ".join(report.skipped[:3])),
                    file=sys.stderr,
                )
            print(
                _("{inserted} stations added, {updated} updated, {unchanged} unchanged").format(
                    inserted=report.inserted, updated=report.updated, unchanged=report.unchanged
                )
            )
            return 0
    return 2


async def cmd_nearby(args: argparse.Namespace) -> int:
    from bot.app import open_core

    try:
        point = GeoPoint.parse(args.lat, args.lon)
    except InvalidLocation as exc:
        print(_("invalid location: {reason}").format(reason=exc.reason), file=sys.stderr)
        return 2
    at = args.at or datetime.now(UTC)
    async with open_core() as core:
        service = NearbyService(core.search, core.stations)
        try:
            point = service.to_wgs84(point, CRS(args.crs))
        except InvalidLocation as exc:
            print(_("invalid location: {reason}").format(reason=exc.reason), file=sys.stderr)
            return 2
        results = await service.nearby(
            point, k=args.k, amenities=args.amenity, at=at, include_closed=args.include_closed
        )
    if args.json:
        print(json.dumps(nearby_json(point, at, results), ensure_ascii=False, indent=2))
        return 0
    if not results:
        print(_("No station found."))
    for n, result in enumerate(results, 1):
        print(describe(n, result))
    return 0


def describe(n: int, result: NearbyResult) -> str:
    station, hit = result.station, result.hit
    if hit.open_now is None:
        state = _("hours unknown")
    elif hit.open_now:
        state = (
            _("open")
            if hit.hours.next_change is None
            else _("open until {time}").format(time=hit.hours.next_change.strftime("%m-%d %H:%M"))
        )
    else:
        state = (
            _("closed")
            if hit.hours.next_change is None
            else _("closed, opens {time}").format(time=hit.hours.next_change.strftime("%m-%d %H:%M"))
        )
    return f"{n}. {station.name} [{station.code}] {round(hit.distance_m):,} m · {state}\n   {station.address}"


def read_new_password() -> str | None:
    """A new password typed twice without echo; None when the two differ."""
    import getpass

    first = getpass.getpass(_("New password: "))
    second = getpass.getpass(_("The same password again: "))
    if first != second:
        print(_("error: {message}").format(message=_("the two passwords differ")), file=sys.stderr)
        return None
    return first


def setup_link(settings: Settings, token: str) -> str:
    from urllib.parse import urljoin

    base = settings.console_url if settings.console_url.endswith("/") else settings.console_url + "/"
    return urljoin(base, "setup") + "?token=" + token


def account_error_text(exc: Any) -> str:
    from bot.services.console_accounts import MIN_PASSWORD, AccountError

    texts = {
        AccountError.USERNAME: _("a username has 2 to 64 characters: letters, digits and _ . @ -"),
        AccountError.EXISTS: _("there is already an account with that name"),
        AccountError.UNKNOWN: _("there is no console account with that name"),
        AccountError.PASSWORD_SHORT: _("the password needs at least {count} characters").format(
            count=MIN_PASSWORD
        ),
        AccountError.PASSWORD_LONG: _("the password is too long"),
        AccountError.ROLE: _("staff need a region (e.g. 44 or 4401); admins take none"),
        AccountError.TELEGRAM_ID: _("a Telegram id is a positive number"),
        AccountError.TELEGRAM_TAKEN: _("that Telegram id is linked to another console account"),
    }
    return texts.get(exc.code, str(exc))


async def cmd_console_account(args: argparse.Namespace, core: Core) -> int:
    from bot.services.console_accounts import AccountError
    from domain.clock import utc_now

    command = args.admin_command
    try:
        if command == "add-user":
            core.console.validate_new(args.username, args.role, args.region or "")
            if await core.console.by_username(args.username) is not None:
                raise AccountError(AccountError.EXISTS, "exists")
            password = None
            if not args.setup_link:
                password = read_new_password()
                if password is None:
                    return 2
            account, token = await core.console.create(
                args.username,
                args.role,
                args.region or "",
                utc_now(),
                password=password,
                telegram_id=args.telegram_id,
                setup_link=args.setup_link,
            )
            print(_("account {username} created").format(username=account.username))
            if token:
                print(
                    _("setup link (valid 24 hours, once): {url}").format(url=setup_link(core.settings, token))
                )
        elif command == "passwd":
            if args.setup_link:
                token = await core.console.new_setup_link(args.username, utc_now())
                print(
                    _("setup link (valid 24 hours, once): {url}").format(url=setup_link(core.settings, token))
                )
                return 0
            if await core.console.by_username(args.username) is None:
                raise AccountError(AccountError.UNKNOWN, "no such account")
            password = read_new_password()
            if password is None:
                return 2
            await core.console.set_password(args.username, password, utc_now())
            print(_("password changed; the account's sessions have ended"))
        elif command in ("disable", "enable"):
            await core.console.set_disabled(args.username, command == "disable", utc_now())
            print(_("account disabled") if command == "disable" else _("account enabled"))
        elif command == "link":
            account = await core.console.link(args.username, args.telegram_id, utc_now())
            print(
                _("{username} now acts as Telegram id {id}").format(
                    username=account.username, id=account.actor_id
                )
            )
        else:  # list
            rows = await core.console.accounts()
            if not rows:
                print(_("no console accounts"))
            for account, access in rows:
                roles = ", ".join(
                    f"{role.value}{' ' + region if region else ''}" for role, region in access.grants
                )
                state = _("disabled") if account.disabled else _("enabled")
                if not account.has_password:
                    state += ", " + _("waiting for its setup link")
                telegram = str(account.telegram_id) if account.telegram_id is not None else "-"
                print(f"{account.username}\t{roles or '-'}\t{telegram}\t{state}")
    except AccountError as exc:
        print(_("error: {message}").format(message=account_error_text(exc)), file=sys.stderr)
        return 2
    return 0


CONSOLE_ACCOUNT_COMMANDS = frozenset({"add-user", "passwd", "disable", "enable", "list", "link"})


async def cmd_admin(args: argparse.Namespace) -> int:
    from bot.app import open_core
    from bot.services.roles import InvalidGrant

    async with open_core(load_index=False) as core:
        if args.admin_command in CONSOLE_ACCOUNT_COMMANDS:
            return await cmd_console_account(args, core)
        try:
            if args.admin_command == "grant":
                new = await core.roles.grant(args.telegram_id, args.role, args.region or "")
                print(_("granted") if new else _("already granted"))
            else:
                removed = await core.roles.revoke(args.telegram_id, args.role, args.region)
                print(_("revoked {count}").format(count=removed) if removed else _("nothing to revoke"))
        except InvalidGrant as exc:
            print(_("error: {message}").format(message=exc), file=sys.stderr)
            return 2
    return 0


async def cmd_db(args: argparse.Namespace) -> int:
    from storage.db import create_engine, current_revision, upgrade_database

    engine = create_engine(Settings().database_url)
    try:
        await upgrade_database(engine)
        print(_("database at revision {revision}").format(revision=await current_revision(engine)))
    finally:
        await engine.dispose()
    return 0


def has_token(settings: Settings) -> bool:
    if settings.bot_token is None:
        print(_("BOT_TOKEN is not set. Get a token from @BotFather, or try `yizhan demo`."), file=sys.stderr)
        return False
    return True


async def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import open_core
    from bot.telegram import (
        ListenError,
        WebhookSecretMissing,
        build_bot,
        build_dispatcher,
        require_webhook_secret,
        run_polling,
        serve_webhook,
    )

    settings = Settings()
    if not has_token(settings):
        return 2
    if settings.webhook_url:
        try:
            require_webhook_secret(settings)
        except WebhookSecretMissing as exc:
            print(_("error: {message}").format(message=exc), file=sys.stderr)
            return 2
        ensure_port_free(args.host, args.port)
    # In webhook mode the public API reads through a pool of its own: Telegram's updates keep theirs.
    api_pool = bool(settings.webhook_url)
    async with open_core(
        settings, follow_changes=True, warm_cache=True, api_pool=api_pool, flush_demand=True
    ) as core:
        assert settings.bot_token is not None  # has_token
        bot = build_bot(settings.bot_token.get_secret_value(), settings.telegram_api_url)
        dp = build_dispatcher(core)
        try:
            if settings.webhook_url:
                try:
                    await serve_webhook(core, bot, dp, args.host, args.port)
                except ListenError as exc:  # taken while the index was loading
                    raise unavailable(exc.host, exc.port, exc.error) from None
            else:
                await run_polling(core, bot, dp)
        finally:
            await bot.session.close()
    return 0


async def cmd_serve(args: argparse.Namespace) -> int:
    import gc
    import signal

    from bot.app import open_core
    from bot.web import build_web_app
    from bot.web.h5 import setup_h5
    from bot.web.server import runner as web_runner
    from bot.web.server import site as listening_site

    ensure_port_free(args.host, args.port)
    # The API's own pool refuses after DB_POOL_TIMEOUT rather than queue requests behind a busy database.
    async with open_core(follow_changes=True, warm_cache=True, api_pool=True, flush_demand=True) as core:
        # Plain HTTP on this machine only (a trial): the console's cookies cannot be HTTPS-only there.
        app = build_web_app(core, secure_cookies=not is_loopback(args.host))
        setup_h5(
            app,
            tile_url=core.settings.map_tile_url,
            tiles=core.settings.map_tiles,
            tianditu_key=core.settings.tianditu_key,
        )
        runner = web_runner(app, core.settings)
        await runner.setup()
        try:
            site = listening_site(runner, args.host, args.port)
            try:
                await site.start()
            except OSError as exc:  # taken while the index was loading
                raise unavailable(args.host, args.port, exc) from None
            host, port = runner.addresses[0][:2]
            url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
            # bot.telegram.tune_runtime's tuning, without importing aiogram (seconds of start-up):
            # what is loaded now stays out of the collector, and young objects are collected less often.
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)
            print(
                _(
                    "yizhan serve: {count} stations at {url}; Ctrl+C stops.\n"
                    "  H5 page: {url}/\n"
                    "  API:     {url}/api/v1/ (OpenAPI: {url}/api/v1/openapi.json)\n"
                    "  health:  {url}/healthz\n"
                    "  metrics: {url}/metrics"
                ).format(count=len(core.search.index), url=url),
                flush=True,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            # SIGTERM (process managers, benchmarks) shuts down as cleanly as Ctrl+C.
            try:
                loop.add_signal_handler(signal.SIGTERM, stop.set)
            except NotImplementedError:  # pragma: no cover - Windows
                pass
            await stop.wait()
        finally:
            await runner.cleanup()
    return 0


async def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    from bot.app import open_core
    from bot.broadcast import build_broadcaster
    from bot.telegram import build_bot, build_i18n
    from domain.clock import utc_now

    settings = Settings()
    if not has_token(settings):
        return 2
    async with open_core(settings, load_index=False, flush_demand=True) as core:
        assert settings.bot_token is not None  # has_token
        bot = build_bot(settings.bot_token.get_secret_value(), settings.telegram_api_url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(
            _("worker: delivering announcements at up to {rate} messages/s").format(
                rate=settings.broadcast_rate
            ),
            file=sys.stderr,
            flush=True,
        )
        try:
            # Background jobs: announcement delivery, and the retention of report comments and photos.
            await asyncio.gather(
                build_broadcaster(core, bot, build_i18n(), utc_now).run(stop),
                core.privacy.run_retention(utc_now, stop),
            )
        finally:
            await bot.session.close()
    return 0


def chosen_locale_reader(core: Core) -> Callable[[int], Awaitable[str | None]]:
    """How the demo's chat page learns the language a user chose with /language (None: no choice)."""
    from bot.services.users import UserService

    async def chosen_locale(user_id: int) -> str | None:
        async with core.sessions() as session:
            user = await UserService(session).get(user_id)
        return user.locale if user is not None else None

    return chosen_locale


async def cmd_demo(args: argparse.Namespace) -> int:
    from bot.app import open_core
    from bot.telegram import build_bot, build_dispatcher, run_polling
    from domain.places import DEMO_PLACES
    from localapi import LocalBotAPI

    ensure_port_free(args.host, args.port)
    async with open_core(flush_demand=True) as core:
        if await core.stations.count() == 0:
            print(_("Empty database: adding the demo stations…"), file=sys.stderr)
            await core.stations.seed_demo()
            await core.reload_index()
        api = LocalBotAPI(
            preset_places=[(place.key, place.label, place.lat, place.lon) for place in DEMO_PLACES],
            chosen_locale=chosen_locale_reader(core),
        )
        try:
            url = await api.start(args.host, args.port)
        except OSError as exc:  # taken while the index was loading
            raise unavailable(args.host, args.port, exc) from None
        bot = build_bot(api.token, url)
        dp = build_dispatcher(core)
        print(
            _(
                "yizhan demo: {count} stations. Open {url}/ in a browser to chat with the bot; Ctrl+C stops."
            ).format(count=len(core.search.index), url=url),
            flush=True,
        )
        try:
            await run_polling(core, bot, dp)
        finally:
            await bot.session.close()
            await api.stop()
    return 0


SERVICE_COMMANDS = frozenset({"run", "serve", "worker", "demo"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.observability import configure_logging

    try:
        log_format = Settings().log_format
    except Exception:  # invalid settings: the command reports them, in its own words
        log_format = "auto"
    # Services log their work at INFO for operators; one-shot commands keep the terminal quiet. -v: one more.
    level = logging.INFO if args.command in SERVICE_COMMANDS else logging.WARNING
    configure_logging(log_format, level=level - 10 if args.verbose else level)
    handler: Callable[[argparse.Namespace], Any] | None = {
        "stations": cmd_stations,
        "nearby": cmd_nearby,
        "db": cmd_db,
        "admin": cmd_admin,
        "run": cmd_run,
        "worker": cmd_worker,
        "serve": cmd_serve,
        "demo": cmd_demo,
        "analytics": cmd_analytics,
    }.get(args.command)
    if handler is None:  # pragma: no cover - argparse refuses unknown commands first
        parser.error(f"unknown command {args.command}")
    try:
        from bot.app import install_event_loop_policy

        install_event_loop_policy()
        code = int(asyncio.run(handler(args)) or 0)
        # Flushed here so that a reader gone early (`| head`) is met below, not at interpreter exit.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader closed the pipe (`yizhan stations export | head`): as Python's documentation advises
        # ("Note on SIGPIPE"), point stdout at devnull so that the exit flush cannot fail again, and end
        # with 1, without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except YizhanError as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
