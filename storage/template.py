"""The import template a union clerk fills in: the header, two example rows and what each column takes.

`write_template` writes it in one of the catalogue languages (the header in that language: English
field names, Simplified or Traditional Chinese labels) as XLSX (the stations on the first sheet, which
is the one the importer reads, and the notes on a second) or as CSV (UTF-8 with a BOM for Excel; the notes
as `#` lines above the header, which the importer skips). Importing the untouched template adds its two
example stations and nothing else, so a clerk can check the whole way before typing real data.

The notes are msgids marked with `N_`; the caller passes the `gettext` of the language it wants.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.hours_zh import HOURS_EXAMPLE_OSM, HOURS_EXAMPLE_ZH
from domain.messages import N_
from domain.values import AMENITY_KEYS, AMENITY_LABELS_ZH
from storage.importers import COLUMN_LABELS_ZH, COLUMN_LABELS_ZH_HANT, STATION_COLUMNS, traditional

__all__ = [
    "TEMPLATE_COLUMNS",
    "TEMPLATE_FORMATS",
    "Note",
    "template_header",
    "template_notes",
    "write_template",
]

Gettext = Callable[[str], str]

#: The columns of the template: the station fields a clerk fills in.
TEMPLATE_COLUMNS: tuple[str, ...] = STATION_COLUMNS
TEMPLATE_FORMATS: tuple[str, ...] = ("xlsx", "csv")
REQUIRED = frozenset({"name", "lat", "lon"})

_HOURS_EXAMPLES = (HOURS_EXAMPLE_ZH, "全天24小时", "每天 8:00-20:00，节假日休息", HOURS_EXAMPLE_OSM)

_COLUMN_NOTES: dict[str, str] = {
    "code": N_(
        "The union's station number. A row without one gets a code made from its name and position, so "
        "importing the same file again updates the station instead of adding it twice."
    ),
    "name": N_("The station's name as riders see it."),
    "address": N_("Street address, as on a map."),
    "lat": N_("Latitude in degrees, e.g. 23.1321 (see the coordinate systems below)."),
    "lon": N_("Longitude in degrees, e.g. 113.3214."),
    "opening_hours": N_(
        "Opening hours as you would write them, e.g. {examples}. Empty means the hours are unknown."
    ),
    "amenities": N_("The free services, separated by 、 or ; — any of: {labels}."),
    "phone": N_("A phone number riders can call."),
    "manager": N_("The name of the person in charge."),
    "host": N_("The organisation hosting the station (a bank branch, a telecom shop, a sanitation depot…)."),
    "region": N_("The 6-digit administrative division code, e.g. 440106."),
    "status": N_("{active}, {paused} or {closed}; empty means {active}."),
}

_STATUS_WORDS = {
    "en": ("active", "temporarily_closed", "closed"),
    "zh_Hans": ("正常", "暂停", "关闭"),
    "zh_Hant": ("正常", "暫停", "關閉"),
}

_EXAMPLES: dict[str, tuple[dict[str, Any], ...]] = {
    "zh_Hans": (
        {
            "code": "GD-440106-0001",
            "name": "天河区体育西路工会驿站",
            "address": "广州市天河区体育西路 1 号（中国移动营业厅内）",
            "lat": 23.1321,
            "lon": 113.3214,
            "opening_hours": "周一至周日 8:00-20:00，节假日照常",
            "amenities": "饮水、热饭（微波炉）、卫生间、手机充电",
            "phone": "020-12345678",
            "manager": "王师傅",
            "host": "中国移动广州分公司",
            "region": "440106",
            "status": "正常",
        },
        {
            "code": "GD-440104-0002",
            "name": "越秀区环卫工人爱心驿站",
            "address": "广州市越秀区中山五路 2 号",
            "lat": 23.126,
            "lon": 113.269,
            "opening_hours": "全天24小时",
            "amenities": "饮水、休息座椅、电动车充电、医药箱",
            "phone": "13800138000",
            "manager": "李阿姨",
            "host": "越秀区环卫站",
            "region": "440104",
            "status": "正常",
        },
    ),
    "en": (
        {
            "code": "GD-440106-0001",
            "name": "天河区体育西路工会驿站",
            "address": "1 Tiyu West Road, Tianhe, Guangzhou (in the China Mobile shop)",
            "lat": 23.1321,
            "lon": 113.3214,
            "opening_hours": "Mo-Su 08:00-20:00",
            "amenities": "drinking_water;food_heating;toilet;phone_charging",
            "phone": "020-12345678",
            "manager": "Wang",
            "host": "China Mobile Guangzhou",
            "region": "440106",
            "status": "active",
        },
        {
            "code": "GD-440104-0002",
            "name": "越秀区环卫工人爱心驿站",
            "address": "2 Zhongshan 5th Road, Yuexiu, Guangzhou",
            "lat": 23.126,
            "lon": 113.269,
            "opening_hours": "24/7",
            "amenities": "drinking_water;rest_area;ebike_charging;first_aid",
            "phone": "13800138000",
            "manager": "Li",
            "host": "Yuexiu sanitation depot",
            "region": "440104",
            "status": "active",
        },
    ),
}
_EXAMPLES["zh_Hant"] = (
    {
        **_EXAMPLES["zh_Hans"][0],
        "name": "天河區體育西路工會驛站",
        "address": "廣州市天河區體育西路 1 號（中國移動營業廳內）",
        "opening_hours": "週一至週日 8:00-20:00，節假日照常",
        "amenities": "飲水、熱飯（微波爐）、衛生間、手機充電",
        "manager": "王師傅",
        "host": "中國移動廣州分公司",
    },
    {
        **_EXAMPLES["zh_Hans"][1],
        "name": "越秀區環衛工人愛心驛站",
        "address": "廣州市越秀區中山五路 2 號",
        "opening_hours": "全天24小時",
        "amenities": "飲水、休息座椅、電動車充電、醫藥箱",
        "manager": "李阿姨",
        "host": "越秀區環衛站",
    },
)


def template_header(lang: str) -> list[str]:
    """The header of the template in `lang`: English field names, or the Chinese labels."""
    if lang == "zh_Hans":
        return [COLUMN_LABELS_ZH[name] for name in TEMPLATE_COLUMNS]
    if lang == "zh_Hant":
        return [COLUMN_LABELS_ZH_HANT[name] for name in TEMPLATE_COLUMNS]
    return list(TEMPLATE_COLUMNS)


def _amenity_labels(lang: str) -> str:
    if lang == "en":
        return ", ".join(AMENITY_KEYS)
    labels = AMENITY_LABELS_ZH.values()
    return "、".join(traditional(label) if lang == "zh_Hant" else label for label in labels)


@dataclass(frozen=True, slots=True)
class Note:
    """One line of the notes: the column's header ("" for a general note), whether it is required, text."""

    column: str
    required: bool
    text: str


def template_notes(lang: str, gettext: Gettext) -> list[Note]:
    """What each column takes and how the file is imported, in the language of `gettext`."""
    statuses = dict(zip(("active", "paused", "closed"), _STATUS_WORDS[lang], strict=True))
    notes = [
        Note("", False, gettext(N_("One row per station, below the header row; replace the two examples.")))
    ]
    for name, header in zip(TEMPLATE_COLUMNS, template_header(lang), strict=True):
        text = gettext(_COLUMN_NOTES[name]).format(
            examples=" / ".join(_HOURS_EXAMPLES), labels=_amenity_labels(lang), **statuses
        )
        notes.append(Note(header, name in REQUIRED, text))
    notes += [
        Note(
            "",
            False,
            gettext(
                N_(
                    "Coordinates are WGS-84 (GPS) unless you say otherwise: copied from Amap or Tencent Maps "
                    "they are GCJ-02, import with --crs gcj02; from Baidu Maps they are BD-09, import with "
                    "--crs bd09."
                )
            ),
        ),
        Note(
            "",
            False,
            gettext(
                N_(
                    "Import with: yizhan stations import FILE [--crs wgs84|gcj02|bd09] [--dry-run]. Every "
                    "rejected row is reported with its row number and what to fix; the other rows are saved."
                )
            ),
        ),
    ]
    return notes


def _note_line(note: Note, gettext: Gettext) -> str:
    if not note.column:
        return note.text
    required = gettext(N_("required")) if note.required else gettext(N_("optional"))
    return gettext(N_("{column} ({required}): {text}")).format(
        column=note.column, required=required, text=note.text
    )


def write_template(path: Path, lang: str, fmt: str, gettext: Gettext) -> None:
    """Write the template in `lang` ("zh_Hans", "zh_Hant" or "en") as `fmt` ("xlsx" or "csv") to `path`."""
    if fmt not in TEMPLATE_FORMATS:
        raise ValueError(f"unknown template format {fmt!r}")
    header = template_header(lang)
    rows = [[row[name] for name in TEMPLATE_COLUMNS] for row in _EXAMPLES[lang]]
    notes = template_notes(lang, gettext)
    if fmt == "csv":
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            comment = gettext(
                N_("Lines starting with # are notes: the import skips them, and you may delete them.")
            )
            for line in (comment, *(_note_line(note, gettext) for note in notes)):
                writer.writerow([f"# {line}"])
            writer.writerow(header)
            writer.writerows(rows)
        return
    _write_xlsx(path, lang, header, rows, notes, gettext)


def _write_xlsx(
    path: Path, lang: str, header: list[str], rows: list[list[Any]], notes: list[Note], gettext: Gettext
) -> None:
    import openpyxl  # only needed for spreadsheets
    from openpyxl.styles import Alignment, Font, PatternFill

    bold = Font(bold=True)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = gettext(N_("stations"))
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = bold
        cell.fill = PatternFill("solid", fgColor="DDEBDD")
    for index, name in enumerate(TEMPLATE_COLUMNS, start=1):
        letter = openpyxl.utils.get_column_letter(index)
        sheet.column_dimensions[letter].width = {
            "name": 28,
            "address": 36,
            "opening_hours": 30,
            "amenities": 36,
        }.get(name, 16)
        if name in ("code", "phone", "region"):
            for cell in sheet[letter][1:]:
                cell.number_format = "@"  # text: Excel must not turn 020-… or 440106 into numbers
    sheet.freeze_panes = "A2"

    notes_sheet = workbook.create_sheet(gettext(N_("how to fill in")))
    notes_sheet.append([gettext(N_("column")), gettext(N_("required")), gettext(N_("what to write"))])
    for cell in notes_sheet[1]:
        cell.font = bold
    for note in notes:
        notes_sheet.append([note.column, gettext(N_("yes")) if note.required else "", note.text])
    notes_sheet.column_dimensions["A"].width = 16
    notes_sheet.column_dimensions["B"].width = 8
    notes_sheet.column_dimensions["C"].width = 100
    for (cell,) in notes_sheet.iter_rows(min_row=2, min_col=3, max_col=3):
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    workbook.save(path)
