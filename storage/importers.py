"""Reading and writing station files as union clerks produce them: CSV, XLSX and GeoJSON.

`parse_station_file` turns a file into `StationRecord`s (WGS-84, validated) plus one `RowError` per rejected
row, numbered as the clerk sees it in Excel (the header is row 1) or as "feature N" in GeoJSON. It never
touches the database: the caller upserts `ParsedImport.records` by code in one transaction. `write_csv` and
`write_geojson` export records in the same formats so that an export re-imports to equal records.

Decisions worth knowing:
- rows above the header whose first cell starts with `#` are comments (the import template's notes);
- every problem in a row is reported, joined by "; " (a clerk fixes a row once, not once per problem);
  a row with the wrong number of cells reports only that, because its other cells are probably shifted;
- `total_rows` counts non-blank data rows, so `len(records) + len(errors) == total_rows`;
- naive `verified_at` values (a bare date, as Excel writes it) are read in the station's timezone (its own
  column, else `default_tz`, else Asia/Shanghai), so records always carry aware datetimes;
- opening hours are NFKC-normalised (full-width digits, colons and dashes typed in Chinese IMEs become
  ASCII) before validation, so the stored expression is the one that was validated; hours written in
  Chinese (`周一至周五 9:00-17:00`) are translated into OSM syntax and the text as written is kept beside;
- every message is a `Text`: English as a `str`, and its msgid and parameters for the edge to translate.
  A file's language is the language of its header (Chinese headers, Traditional ones, or English) and
  `ParsedImport.lang` names it, so a clerk reads the errors in the language of the sheet.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import operator
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.clock import DEFAULT_TZ
from domain.coords import out_of_china, to_wgs84
from domain.hours_zh import (
    HOURS_EXAMPLE_OSM,
    HOURS_EXAMPLE_ZH,
    AcceptedHours,
    UnreadableHours,
    accept_hours,
)
from domain.messages import N_, Gettext, Text, hours_error_sentences, translated
from domain.values import (
    AMENITY_KEYS,
    AMENITY_LABELS_ZH,
    CRS,
    InvalidOpeningHours,
    StationRecord,
    StationStatus,
    YizhanError,
)

__all__ = [
    "EXPORT_COLUMNS",
    "STATION_COLUMNS",
    "ImportFileError",
    "ImportLimits",
    "ParsedImport",
    "RowError",
    "Text",
    "XlsxExport",
    "check_station",
    "csv_text",
    "file_too_large",
    "geojson_feature",
    "parse_station_file",
    "translated",
    "write_csv",
    "write_geojson",
]

#: The station fields a clerk fills in, in the order of docs/ARCHITECTURE.md (the import template's columns).
STATION_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "address",
    "lat",
    "lon",
    "opening_hours",
    "amenities",
    "phone",
    "manager",
    "host",
    "region",
    "status",
)
#: Columns of an export: the station fields plus the ones the system keeps.
EXPORT_COLUMNS: tuple[str, ...] = (*STATION_COLUMNS, "timezone", "verified_at", "opening_hours_text")
REQUIRED_COLUMNS: tuple[str, ...] = ("name", "lat", "lon")
#: The longest text each free-text field may hold (the columns' sizes in storage/models.py).
TEXT_LIMITS: dict[str, int] = {
    "code": 64,
    "name": 200,
    "address": 300,
    "host": 200,
    "phone": 64,
    "manager": 100,
}

#: The Chinese header of each field, as in the union's template (used in messages too).
COLUMN_LABELS_ZH: dict[str, str] = {
    "code": "站点编号",
    "name": "站点名称",
    "address": "地址",
    "lat": "纬度",
    "lon": "经度",
    "opening_hours": "开放时间",
    "amenities": "服务设施",
    "phone": "联系电话",
    "manager": "管理人",
    "host": "所属单位",
    "region": "行政区划代码",
    "status": "状态",
    "timezone": "时区",
    "verified_at": "核验日期",
    "opening_hours_text": "开放时间原文",
}
#: The same headers in Traditional characters (a template for Hong Kong, Macao and Taiwan clerks).
COLUMN_LABELS_ZH_HANT: dict[str, str] = {
    "code": "站點編號",
    "name": "站點名稱",
    "address": "地址",
    "lat": "緯度",
    "lon": "經度",
    "opening_hours": "開放時間",
    "amenities": "服務設施",
    "phone": "聯繫電話",
    "manager": "管理人",
    "host": "所屬單位",
    "region": "行政區劃代碼",
    "status": "狀態",
    "timezone": "時區",
    "verified_at": "核驗日期",
    "opening_hours_text": "開放時間原文",
}

# Synonyms seen in real spreadsheets. Deliberately absent: 序号 (a row counter, not a station number) and
# bare "id" (usually some other system's key); such columns are ignored with a warning instead.
_COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "code": ("code", "stationcode", "编号", "站点编码", "驿站编号"),
    "name": ("name", "stationname", "名称", "站名", "驿站名称", "站点名"),
    "address": ("address", "addr", "详细地址", "站点地址"),
    "lat": ("lat", "latitude", "纬度"),
    "lon": ("lon", "lng", "long", "longitude", "经度"),
    "opening_hours": ("openinghours", "hours", "营业时间", "服务时间"),
    "amenities": ("amenities", "services", "facilities", "设施", "服务项目", "服务内容"),
    "phone": ("phone", "tel", "telephone", "电话", "联系方式"),
    "manager": ("manager", "负责人", "联系人", "管理员"),
    "host": ("host", "依托单位", "单位"),
    "region": ("region", "adcode", "区划代码", "行政区划"),
    "status": ("status", "站点状态"),
    "timezone": ("timezone", "tz"),
    "verified_at": ("verifiedat", "verified", "核验时间"),
    "opening_hours_text": ("openinghourstext", "hourstext", "开放时间（原文）"),
}

_STATUS_WORDS: dict[str, StationStatus] = {
    "active": StationStatus.ACTIVE,
    "正常": StationStatus.ACTIVE,
    "运营中": StationStatus.ACTIVE,
    "开放": StationStatus.ACTIVE,
    "temporarily_closed": StationStatus.TEMPORARILY_CLOSED,
    "暂停": StationStatus.TEMPORARILY_CLOSED,
    "暂停服务": StationStatus.TEMPORARILY_CLOSED,
    "临时关闭": StationStatus.TEMPORARILY_CLOSED,
    "closed": StationStatus.CLOSED,
    "关闭": StationStatus.CLOSED,
    "已关闭": StationStatus.CLOSED,
    "撤销": StationStatus.CLOSED,
}

_PROGRESS_EVERY = 5_000
#: Cells a spreadsheet would run as a formula (OWASP, "CSV injection"). An export puts an apostrophe, Excel's
#: text marker, before them; an import of a CSV removes one leading apostrophe before them again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Members of an .xlsx smaller than this are never called a zip bomb, whatever their ratio.
_ZIP_RATIO_FLOOR = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """What an import accepts at most; checked before the content is parsed, each with its own error.
    The defaults take twice the national network (186,100 stations) with room to spare."""

    #: Bytes of the file (IMPORT_MAX_BYTES).
    max_bytes: int = 200 * 1024 * 1024
    #: Data rows, or GeoJSON features (IMPORT_MAX_ROWS).
    max_rows: int = 1_000_000
    #: Characters of one line of a CSV file (IMPORT_MAX_LINE).
    max_line: int = 100_000
    #: Bytes an .xlsx unpacks to, all members together (IMPORT_MAX_XLSX_UNCOMPRESSED).
    max_xlsx_uncompressed: int = 1024 * 1024 * 1024
    #: Uncompressed to compressed size of any one .xlsx member above 1 MiB (IMPORT_MAX_ZIP_RATIO).
    max_zip_ratio: int = 200


_AMENITY_SEPARATORS = re.compile(r"[;|,，、；｜]")
_HEADER_NOISE = re.compile(r"[\s_\-*:：\ufeff]+")
_PARENTHESISED = re.compile(r"^(.*?)\((.*)\)$")
_LOOSE_DATE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)


class ImportFileError(YizhanError):
    """The file as a whole cannot be imported (unreadable, wrong type, no usable header...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def translated(self, gettext: Gettext) -> str:
        return translated(self.reason, gettext)


_UNIT_TEXT = {"row": N_("row {row}"), "feature": N_("feature {row}")}
_ERROR_LINE = {"row": N_("row {row}: {reason}"), "feature": N_("feature {row}: {reason}")}
#: Between two problems of one row (Chinese puts a full-width semicolon).
PROBLEM_SEPARATOR = N_("; ")


def _where(unit: str, row: int) -> Text:
    return Text(_UNIT_TEXT[unit], row=row)


@dataclass
class RowError:
    """One rejected row. `row` is the Excel row number (header = 1) or the GeoJSON feature number (from 1).
    `reason` is every problem in English; `problems` the same one by one, for `translated`."""

    row: int
    reason: str
    unit: str = "row"
    problems: tuple[str, ...] = ()
    #: The field each problem is about (a key of `EXPORT_COLUMNS`), "" for the row as a whole; either
    #: empty or as long as `problems`.
    columns: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, row: int, problems: Sequence[str], unit: str = "row", columns: Sequence[str] = ()
    ) -> RowError:
        return cls(row, "; ".join(problems), unit, tuple(problems), tuple(columns))

    def column_of(self, index: int) -> str:
        """The field of `problems[index]`, "" when the problem is about the whole row."""
        return self.columns[index] if index < len(self.columns) else ""

    def __str__(self) -> str:
        return f"{self.unit} {self.row}: {self.reason}"

    def translated(self, gettext: Gettext) -> str:
        """The line a clerk reads (`第 6 行：…`) in the language of `gettext`."""
        reason = gettext(PROBLEM_SEPARATOR).join(
            translated(p, gettext) for p in self.problems or (self.reason,)
        )
        return gettext(_ERROR_LINE[self.unit]).format(row=self.row, reason=reason)


@dataclass
class ParsedImport:
    records: list[StationRecord]
    errors: list[RowError]
    total_rows: int
    warnings: list[str] = field(default_factory=list)
    #: The language of the file's header: "zh_Hans", "zh_Hant" or "en" (the catalogue for its messages).
    lang: str = "en"
    #: The row (or feature) number of each record, for messages about it after parsing.
    rows: list[int] = field(default_factory=list)


Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------- helpers


# Traditional characters of headers, amenity labels and statuses, read as their Simplified forms.
_TRADITIONAL = str.maketrans(
    dict(
        zip(
            "點編號稱緯經開時間務設備聯繫係電話單屬劃碼狀態區驗詳細營業負責員絡項據網驛類別"
            "飲熱飯爐衛機動車醫藥調無線書報閱覽縫補廁傘暫關閉運撤銷",
            "点编号称纬经开时间务设备联系系电话单属划码状态区验详细营业负责员络项据网驿类别"
            "饮热饭炉卫机动车医药调无线书报阅览缝补厕伞暂关闭运撤销",
            strict=True,
        )
    )
)
_TRADITIONAL_ONLY = frozenset(chr(c) for c in _TRADITIONAL)
# The other way, for the words of the Traditional template (系 has two Traditional forms: left out).
_TO_TRADITIONAL = {
    ord(simplified): chr(trad) for trad, simplified in _TRADITIONAL.items() if simplified != "系"
}


def traditional(text: str) -> str:
    """Header words, amenity labels and statuses in Traditional characters, as `_fold` reads them back."""
    return text.translate(_TO_TRADITIONAL)


_CJK = re.compile(r"[\u3400-\u9fff]")


def _fold(text: str) -> str:
    """Case-, width-, script- and space-insensitive form used to match headers and amenity labels."""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", text).casefold().translate(_TRADITIONAL))


def header_language(headers: Iterable[str]) -> str:
    """The catalogue for a file whose recognised headers are these: Traditional characters anywhere make
    it zh_Hant, other Chinese zh_Hans, none at all English."""
    text = "".join(headers)
    if not _CJK.search(text):
        return "en"
    return "zh_Hant" if any(c in _TRADITIONAL_ONLY for c in text) else "zh_Hans"


def _build_column_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name in EXPORT_COLUMNS:
        for alias in (name, COLUMN_LABELS_ZH[name], *_COLUMN_SYNONYMS[name]):
            index[_fold(alias)] = name
    return index


_COLUMN_INDEX = _build_column_index()


def column_for_header(header: str) -> str | None:
    """The field a header names ("纬度", "Latitude", "经度(lon)", "*站点名称"...), or None."""
    folded = _fold(header)
    if folded in _COLUMN_INDEX:
        return _COLUMN_INDEX[folded]
    match = _PARENTHESISED.match(folded)  # "经度(lon)": try the words outside, then inside, the brackets
    if match:
        for part in match.groups():
            if part in _COLUMN_INDEX:
                return _COLUMN_INDEX[part]
    return None


# Short forms clerks write besides the catalogue labels. Only unambiguous ones: "充电" could be a phone or
# an e-bike, so it stays unknown and the clerk is asked to say which.
_AMENITY_SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "food_heating": ("热饭", "微波炉"),
    "air_conditioning": ("空调",),
    "heating": ("取暖",),
    "umbrella": ("雨具", "雨伞"),
    "toilet": ("厕所",),
    "drinking_water": ("饮用水",),
}


def _build_amenity_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for key, label in AMENITY_LABELS_ZH.items():
        for alias in (key, label, *_AMENITY_SHORT_FORMS.get(key, ())):
            index[_fold(alias)] = key
    return index


_AMENITY_INDEX = _build_amenity_index()
_AMENITY_ORDER = {key: i for i, key in enumerate(AMENITY_KEYS)}
_AMENITY_HINT = ", ".join(re.split(r"[（(]", label, maxsplit=1)[0] for label in AMENITY_LABELS_ZH.values())


def _text(value: Any) -> str:
    """A cell as text: strings stripped, Excel's numbers without a spurious ".0", dates in ISO form."""
    if value.__class__ is str:  # nearly every call: test it first
        return value.strip()  # type: ignore[no-any-return]
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone or adcode typed into a number cell
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value).strip()


_NUMBER_FIXES = str.maketrans({"。": ".", "−": "-", "–": "-", "°": None, " ": None, "\u3000": None})


def _to_float(value: Any) -> float:
    """A coordinate cell as a float; raises ValueError for anything that is not a finite number."""
    if value.__class__ is str:
        try:
            number = float(value)  # the fast path: what almost every cell looks like
        except ValueError:
            # Full-width digits, commas and points come from Chinese IMEs; a lone comma is a decimal comma
            # (a coordinate never needs a thousands separator).
            text = unicodedata.normalize("NFKC", value).translate(_NUMBER_FIXES)
            if "," in text and "." not in text and text.count(",") == 1:
                text = text.replace(",", ".")
            number = float(text)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def generated_code(name: str, lat: float, lon: float) -> str:
    """The code given to a row without one: stable across re-imports of the same content (WGS-84 input)."""
    digest = hashlib.sha1(f"{name}|{lat:.5f}|{lon:.5f}".encode()).hexdigest()
    return "X" + digest[:10].upper()


def _decode(data: bytes) -> str:
    # utf-8-sig strictly first: GB18030 decodes almost any byte string, so it can only be the fallback.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ImportFileError(
            Text(
                N_(
                    "the file is neither UTF-8 nor GB18030 text; "
                    "save it from Excel as CSV (UTF-8) and try again"
                )
            )
        ) from None


def _check_size(path: Path, limits: ImportLimits) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(
            Text(N_("cannot read {path}: {error}"), path=str(path), error=exc.strerror or str(exc))
        ) from None
    if size > limits.max_bytes:
        raise file_too_large(size, limits)


def file_too_large(size: int, limits: ImportLimits) -> ImportFileError:
    """The error for a file of `size` bytes over `limits.max_bytes` (an upload says it as soon as it has
    read more than the limit, with what it read so far)."""
    return ImportFileError(
        Text(
            N_(
                "the file has {size} bytes; at most {limit} can be imported at once "
                "(IMPORT_MAX_BYTES): split it into several files"
            ),
            size=f"{size:,}",
            limit=f"{limits.max_bytes:,}",
        )
    )


def _too_many_rows(limits: ImportLimits) -> ImportFileError:
    return ImportFileError(
        Text(
            N_(
                "the file has more than {limit} rows, the most one import takes (IMPORT_MAX_ROWS): "
                "split it into several files"
            ),
            limit=f"{limits.max_rows:,}",
        )
    )


def _check_lines(text: str, limits: ImportLimits) -> None:
    # Jumps from the last line break inside each window of max_line + 1 characters to the next window, so a
    # 44 MB file costs a few hundred C searches (splitting it into lines cost 0.25 s, 6% of a parse).
    position, limit = 0, limits.max_line
    while len(text) - position > limit:
        found = text.rfind("\n", position, position + limit + 1)
        if found >= 0:
            position = found + 1
            continue
        number = text.count("\n", 0, position) + 1
        line_end = text.find("\n", position)
        length = (line_end if line_end >= 0 else len(text)) - position
        raise ImportFileError(
            Text(
                N_(
                    "line {line} has {length} characters; at most {limit} (IMPORT_MAX_LINE): "
                    "is it really a CSV file?"
                ),
                line=number,
                length=f"{length:,}",
                limit=f"{limits.max_line:,}",
            )
        )


def _check_zip(path: Path, limits: ImportLimits) -> None:
    """Refuse a workbook that would unpack to too much, from the zip directory alone (nothing unpacked)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # openpyxl reports an unreadable workbook in its own words
    total = sum(member.file_size for member in members)
    if total > limits.max_xlsx_uncompressed:
        raise ImportFileError(
            Text(
                N_(
                    "the workbook unpacks to {size} bytes; at most {limit} "
                    "(IMPORT_MAX_XLSX_UNCOMPRESSED): split it into several files"
                ),
                size=f"{total:,}",
                limit=f"{limits.max_xlsx_uncompressed:,}",
            )
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _ZIP_RATIO_FLOOR and ratio > limits.max_zip_ratio:
            raise ImportFileError(
                Text(
                    N_(
                        "{member} is compressed {ratio} times, more than {limit} (IMPORT_MAX_ZIP_RATIO): "
                        "this looks like a zip bomb, not a workbook"
                    ),
                    member=member.filename,
                    ratio=f"{ratio:,.0f}",
                    limit=limits.max_zip_ratio,
                )
            )


def _unguard(cell: str) -> str:
    """A CSV cell without the apostrophe an export put before a would-be formula."""
    return cell[1:] if cell[:1] == "'" and cell.lstrip("'").startswith(_FORMULA_START) else cell


def _guard(cell: str) -> str:
    """A CSV cell that no spreadsheet runs as a formula: `=1+1` is written `'=1+1`."""
    return "'" + cell if cell.lstrip("'").startswith(_FORMULA_START) else cell


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportFileError(
            Text(N_("cannot read {path}: {error}"), path=str(path), error=exc.strerror or str(exc))
        ) from None


def _is_blank(cells: Sequence[Any]) -> bool:
    try:
        return not "".join(cells).strip()  # CSV cells are all strings: one C call
    except TypeError:
        return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


# ---------------------------------------------------------------------------------------- row checking


class _RowParser:
    """Validates rows given as {field: raw value}; caches what repeats across rows (hours, amenities)."""

    def __init__(self, crs: CRS, default_tz: str | None, unit: str) -> None:
        self.crs = crs
        self.default_tz = default_tz
        self.unit = unit
        self.seen_codes: dict[str, int] = {}
        self._hours_cache: dict[str, AcceptedHours | tuple[Text, ...]] = {}
        self._amenity_cache: dict[str, tuple[tuple[str, ...], list[str]]] = {}
        self._tz_cache: dict[str, ZoneInfo | None] = {}
        self._amenity_items: dict[str, str | None] = {}
        self._status_cache: dict[str, StationStatus | None] = {}

    # Each check appends human-readable reasons to `problems` and returns the clean value.

    def _coordinate(self, raw: Any, label: str, empty: str, problems: list[str]) -> float | None:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            problems.append(Text(empty, label=label))
            return None
        try:
            return _to_float(raw)
        except (ValueError, TypeError):
            problems.append(Text(N_("{label} {value} is not a number"), label=label, value=repr(_text(raw))))
            return None

    def _position(
        self, values: dict[str, Any], labels: dict[str, str], problems: list[str]
    ) -> tuple[float, float] | None:
        lat_empty = N_("{label} is empty; a latitude is required")
        lon_empty = N_("{label} is empty; a longitude is required")
        lat = self._coordinate(values.get("lat"), labels.get("lat", "latitude"), lat_empty, problems)
        lon = self._coordinate(values.get("lon"), labels.get("lon", "longitude"), lon_empty, problems)
        if lat is None or lon is None:
            return None
        lat_ok = -90.0 <= lat <= 90.0
        lon_ok = -180.0 <= lon <= 180.0
        if not lat_ok:
            if -90 <= lon <= 90 and -180 <= lat <= 180:
                message = N_(
                    "latitude {lat:g} is out of range (must be between -90 and 90) "
                    "(latitude and longitude look swapped)"
                )
            else:
                message = N_("latitude {lat:g} is out of range (must be between -90 and 90)")
            problems.append(Text(message, lat=lat))
        if not lon_ok:
            problems.append(
                Text(N_("longitude {lon:g} is out of range (must be between -180 and 180)"), lon=lon)
            )
        if not (lat_ok and lon_ok):
            return None
        if self.crs is not CRS.WGS84 and out_of_china(lat, lon):
            problems.append(
                Text(
                    N_(
                        "coordinates {lat:g}, {lon:g} are outside China, so they cannot be {crs}; check the "
                        "coordinate system chosen for the import and that latitude and longitude are not "
                        "swapped"
                    ),
                    lat=lat,
                    lon=lon,
                    crs=self.crs.value.upper(),
                )
            )
            return None
        wlat, wlon = to_wgs84(lat, lon, self.crs)
        return round(wlat, 7), round(wlon, 7)

    def _opening_hours(self, raw: Any, written: Any, problems: list[str]) -> tuple[str, str]:
        """(OSM expression, text as written): Chinese hours are translated, and the original kept; an
        `opening_hours_text` cell (our own export writes one) supplies the original of OSM hours."""
        text = _text(raw)
        original = _text(written)
        if not text:
            text, original = original, ""  # only the text as written: translate it
        if not text:
            return "", ""  # unknown hours are allowed: the station shows "hours unknown"
        accepted = self._hours_cache.get(text)
        if accepted is None:
            try:
                accepted = accept_hours(text)
            except UnreadableHours as exc:
                accepted = (
                    Text(
                        N_(
                            "opening hours {value} are not valid: {reason}; "
                            "write them like {example} or {osm}"
                        ),
                        value=repr(text),
                        reason=Text(exc.reason, fragment=exc.fragment),
                        example=HOURS_EXAMPLE_ZH,
                        osm=HOURS_EXAMPLE_OSM,
                    ),
                )
            except InvalidOpeningHours as exc:
                # The bot's words for the parser's error; a hint is one more problem of the row.
                first, *hints = hours_error_sentences(exc)
                accepted = (
                    Text(
                        N_("opening hours {value} are not valid: {reason}"),
                        value=repr(unicodedata.normalize("NFKC", text)),
                        reason=first,
                    ),
                    *hints,
                )
            self._hours_cache[text] = accepted
        if isinstance(accepted, tuple):
            problems.extend(accepted)
            return "", ""
        return accepted.expression, accepted.original or original

    def _amenities(self, raw: Any, problems: list[str]) -> tuple[str, ...]:
        if isinstance(raw, (list, tuple)):  # GeoJSON may give a list
            items = [_text(item) for item in raw]
            cache_key = "\x00".join(items)
        else:
            cache_key = _text(raw)
            items = _AMENITY_SEPARATORS.split(cache_key)
        cached = self._amenity_cache.get(cache_key)
        if cached is None:
            keys: set[str] = set()
            unknown: list[str] = []
            for item in items:
                item = item.strip()
                if not item:
                    continue
                if item not in self._amenity_items:
                    self._amenity_items[item] = _AMENITY_INDEX.get(_fold(item))
                key = self._amenity_items[item]
                if key is None:
                    if item not in unknown:
                        unknown.append(item)
                else:
                    keys.add(key)
            cached = (tuple(sorted(keys, key=_AMENITY_ORDER.__getitem__)), unknown)
            self._amenity_cache[cache_key] = cached
        amenities, unknown = cached
        for item in unknown:
            problems.append(
                Text(
                    N_("unknown amenity {item} (accepted: {labels}, or the English keys)"),
                    item=repr(item),
                    labels=_AMENITY_HINT,
                )
            )
        return amenities

    def _status(self, raw: Any, problems: list[str]) -> StationStatus:
        text = _text(raw)
        if not text:
            return StationStatus.ACTIVE
        if text not in self._status_cache:
            folded = text.casefold().translate(_TRADITIONAL)
            self._status_cache[text] = _STATUS_WORDS.get(re.sub(r"[\s\-]+", "_", folded))
        status = self._status_cache[text]
        if status is None:
            problems.append(
                Text(
                    N_(
                        "unknown status {value} "
                        "(use active, temporarily_closed or closed; or 正常, 暂停, 关闭)"
                    ),
                    value=repr(text),
                )
            )
            return StationStatus.ACTIVE
        return status

    def zone(self, name: str) -> ZoneInfo | None:
        if name not in self._tz_cache:
            try:
                self._tz_cache[name] = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                self._tz_cache[name] = None
        return self._tz_cache[name]

    def _timezone(self, raw: Any, problems: list[str]) -> str | None:
        name = _text(raw)
        if not name:
            return self.default_tz
        if self.zone(name) is None:
            problems.append(
                Text(
                    N_("unknown timezone {value} (use an IANA name such as Asia/Shanghai or Asia/Urumqi)"),
                    value=repr(name),
                )
            )
            return None
        return name

    def _verified_at(self, raw: Any, tz_name: str | None, problems: list[str]) -> datetime | None:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        parsed: datetime | None = None
        if isinstance(raw, datetime):
            parsed = raw
        elif isinstance(raw, date):
            parsed = datetime.combine(raw, time())
        else:
            text = unicodedata.normalize("NFKC", _text(raw))
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                # Excel writes dates in the Chinese locale as 2024/5/1; clerks type 2024年5月1日.
                match = _LOOSE_DATE.match(text)
                if match:
                    try:
                        year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
                        parsed = datetime(year, month, day, hour, minute, second)
                    except ValueError:
                        parsed = None
        if parsed is None:
            problems.append(
                Text(N_("verification date {value} is not a date (use YYYY-MM-DD)"), value=repr(_text(raw)))
            )
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone(tz_name or DEFAULT_TZ) or ZoneInfo(DEFAULT_TZ))
        return parsed

    def check(
        self, values: Mapping[str, Any], labels: Mapping[str, str], row: int = 0
    ) -> tuple[StationRecord | None, dict[str, list[str]]]:
        """One station's values → (record, no problems) or (None, {field: problems}); `position` holds the
        problems of `lat` and `lon` together (one may be wrong because of the other: swapped). Both an
        import row (`parse`) and a staff member's edit of one station go through here."""
        problems: dict[str, list[str]] = {}

        def at(name: str) -> list[str]:
            return problems.setdefault(name, [])

        name = _text(values.get("name"))
        if not name:
            at("name").append(
                Text(N_("the station name ({label}) is empty"), label=labels.get("name", "name"))
            )
        code = _text(values.get("code"))
        if code and row:
            first = self.seen_codes.setdefault(code, row)
            if first != row:
                at("code").append(
                    Text(
                        N_("code {code} is repeated: {where} already has it"),
                        code=repr(code),
                        where=_where(self.unit, first),
                    )
                )
        texts: dict[str, str] = {}
        for field_name, limit in TEXT_LIMITS.items():
            texts[field_name] = value = _text(values.get(field_name))
            if len(value) > limit:
                at(field_name).append(
                    Text(
                        N_("{label} has {length} characters; at most {limit}"),
                        label=labels.get(field_name, field_name),
                        length=len(value),
                        limit=limit,
                    )
                )
        position = self._position(dict(values), dict(labels), at("position"))
        opening_hours, opening_hours_text = self._opening_hours(
            values.get("opening_hours"), values.get("opening_hours_text"), at("opening_hours")
        )
        amenities = self._amenities(values.get("amenities"), at("amenities"))
        status = self._status(values.get("status"), at("status"))
        timezone = self._timezone(values.get("timezone"), at("timezone"))
        verified_at = self._verified_at(values.get("verified_at"), timezone, at("verified_at"))
        problems = {key: found for key, found in problems.items() if found}
        if not problems and position is not None and not code:
            code = generated_code(name, *position)
            first = self.seen_codes.setdefault(code, row)
            if first != row:
                at("code").append(
                    Text(
                        N_("same name and coordinates as {where} (neither has a code)"),
                        where=_where(self.unit, first),
                    )
                )
        if problems or position is None:
            return None, problems
        record = StationRecord(
            code=code,
            name=name,
            lat=position[0],
            lon=position[1],
            address=texts["address"],
            region=_text(values.get("region")),
            host=texts["host"],
            opening_hours=opening_hours,
            opening_hours_text=opening_hours_text,
            amenities=amenities,
            phone=texts["phone"],
            manager=texts["manager"],
            status=status,
            timezone=timezone,
            verified_at=verified_at,
        )
        return record, {}

    def parse(self, values: dict[str, Any], labels: dict[str, str], row: int) -> StationRecord | RowError:
        """One row → a record, or an error listing every problem found in it (each with its column)."""
        record, problems = self.check(values, labels, row)
        if record is not None:
            return record
        found: list[str] = []
        columns: list[str] = []
        for key, items in problems.items():
            for problem in items:
                found.append(problem)
                columns.append(_position_column(problem, labels) if key == "position" else key)
        return RowError.of(row, found, self.unit, tuple(columns))


def _position_column(problem: str, labels: Mapping[str, str]) -> str:
    """`lon` for a problem of the longitude alone, else `lat` (a swap is reported on the latitude)."""
    if isinstance(problem, Text) and "lat" not in problem.params:
        if "lon" in problem.params or problem.params.get("label") == labels.get("lon", "longitude"):
            return "lon"
    return "lat"


def check_station(
    values: Mapping[str, Any], labels: Mapping[str, str] | None = None, default_tz: str | None = None
) -> tuple[StationRecord | None, dict[str, list[str]]]:
    """The import's checks of one station's values (as cells: text), for an edit of a single station:
    (record, {}) or (None, {field: problems}) where a field is a station field or `position` (lat and
    lon). The record's region is the given one: derive it from the position (bot/services/regions.py)."""
    parser = _RowParser(CRS.WGS84, default_tz, "row")
    return parser.check(values, labels or {})


# ---------------------------------------------------------------------------------- tabular (CSV, XLSX)


def _map_header(header: Sequence[Any]) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Header cells → ({field: column index}, {field: header as written}, [unrecognised headers])."""
    columns: dict[str, int] = {}
    labels: dict[str, str] = {}
    unknown: list[str] = []
    for index, cell in enumerate(header):
        text = _text(cell).lstrip("\ufeff")
        if not text:
            continue  # Excel leaves empty header cells after the last column
        name = column_for_header(text)
        if name is None:
            unknown.append(text)
        elif name in columns:
            raise ImportFileError(
                Text(
                    N_("columns {first} and {second} both mean {name}; keep only one"),
                    first=repr(labels[name]),
                    second=repr(text),
                    name=name,
                )
            )
        else:
            columns[name] = index
            labels[name] = text
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        found = ", ".join(_text(cell) for cell in header if _text(cell)) or "none"
        wanted = ", ".join(f"{name} ({COLUMN_LABELS_ZH[name]})" for name in missing)
        raise ImportFileError(
            Text(
                N_("missing required column(s): {wanted}; columns found: {found}"), wanted=wanted, found=found
            )
        )
    return columns, labels, unknown


def _formula_error(row: int, columns: list[int], header: Sequence[Any]) -> RowError:
    from openpyxl.utils import get_column_letter

    named = ", ".join(
        f"{_text(header[i]) if i < len(header) else '?'} ({get_column_letter(i + 1)})" for i in columns
    )
    if len(columns) == 1:
        message = N_(
            "the cell in column {columns} holds a formula; paste the value instead (Paste Special → Values)"
        )
    else:
        message = N_(
            "the cells in columns {columns} hold formulas; paste the values instead (Paste Special → Values)"
        )
    return RowError.of(row, [Text(message, columns=named)])


def _parse_table(
    rows: Sequence[tuple[int, Sequence[Any]]],
    parser: _RowParser,
    progress: Progress | None,
    strict_width: bool,
    formulas: dict[int, list[int]] | None = None,
) -> ParsedImport:
    """Rows as (Excel row number, cells), the header first. `strict_width` rejects short/long CSV rows.
    `formulas`: the columns (0-based) of each row's formula cells, rejected rather than imported."""
    header_at = next(
        (i for i, (_, cells) in enumerate(rows) if not _is_blank(cells) and not _is_comment(cells)), None
    )
    if header_at is None:
        raise ImportFileError(Text(N_("the file is empty: no header row")))
    columns, labels, unknown = _map_header(rows[header_at][1])
    warnings: list[str] = []
    if unknown:
        warnings.append(Text(N_("ignored columns not recognised: {columns}"), columns=", ".join(unknown)))
    width = len(rows[header_at][1])
    names = tuple(columns)
    pick = operator.itemgetter(*columns.values())
    data = rows[header_at + 1 :]
    total = len(data)
    records: list[StationRecord] = []
    errors: list[RowError] = []
    record_rows: list[int] = []
    for done, (row_number, cells) in enumerate(data, start=1):
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, total)
        if _is_blank(cells):
            continue
        if formulas and row_number in formulas:
            errors.append(_formula_error(row_number, formulas[row_number], rows[header_at][1]))
            continue
        if strict_width and len(cells) != width:
            if len(cells) < width:
                message = N_(
                    "the row has only {cells} cells but the header has {width}; "
                    "a separator or a cell is missing"
                )
                errors.append(RowError.of(row_number, [Text(message, cells=len(cells), width=width)]))
                continue
            if not _is_blank(cells[width:]):
                message = N_(
                    "the row has {cells} cells but the header has {width}; "
                    "a value probably contains an unquoted separator"
                )
                errors.append(RowError.of(row_number, [Text(message, cells=len(cells), width=width)]))
                continue
        if len(cells) < width:  # XLSX rows end at their last filled cell
            cells = (*cells, *(None,) * (width - len(cells)))
        values = dict(zip(names, pick(cells), strict=True))
        result = parser.parse(values, labels, row_number)
        if isinstance(result, RowError):
            errors.append(result)
        else:
            records.append(result)
            record_rows.append(row_number)
    if progress is not None:
        progress(total, total)
    if total == 0:
        warnings.append(Text(N_("the file has a header but no data rows")))
    lang = header_language(labels.values())
    return ParsedImport(records, errors, len(records) + len(errors), warnings, lang, rows=record_rows)


def _is_comment(cells: Sequence[Any]) -> bool:
    """A row above the header whose first cell starts with `#` (the template's notes) is skipped."""
    first = cells[0] if cells else None
    return isinstance(first, str) and first.lstrip("\ufeff \t").startswith("#")


def _sniff_delimiter(text: str) -> str:
    first_line = next(
        (
            line
            for line in text[:65_536].splitlines()
            if line.strip() and not line.lstrip('\ufeff "').startswith("#")
        ),
        "",
    )
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", "\t", ";")}
    # Comma unless the header clearly uses another separator (and no commas at all would be odd for it).
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > counts[","] else ","


def _parse_csv(
    path: Path, parser: _RowParser, progress: Progress | None, limits: ImportLimits
) -> ParsedImport:
    text = _decode(_read_bytes(path))
    if not text.strip():
        raise ImportFileError(Text(N_("the file is empty")))
    _check_lines(text, limits)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    try:
        # Records, not physical lines: a quoted cell may contain a line break and still be one Excel row.
        # Tuples of strings, unlike lists, drop out of the garbage collector's sight after one pass, which
        # keeps full collections cheap while 186,100 rows are in memory (measured: -2 s).
        records = itertools.islice(enumerate(reader, start=1), limits.max_rows + 2)
        if "'" in text:  # an export's guarded cells (one C search; most files have no apostrophe at all)
            rows = [(number, tuple(map(_unguard, cells))) for number, cells in records]
        else:
            rows = [(number, tuple(cells)) for number, cells in records]
    except csv.Error as exc:
        raise ImportFileError(
            Text(
                N_("the CSV file is malformed near line {line}: {error}"),
                line=reader.line_num,
                error=str(exc),
            )
        ) from None
    if len(rows) > limits.max_rows + 1:  # the header, then at most max_rows
        raise _too_many_rows(limits)
    return _parse_table(rows, parser, progress, strict_width=True)


def _parse_xlsx(
    path: Path, parser: _RowParser, progress: Progress | None, limits: ImportLimits
) -> ParsedImport:
    import openpyxl  # only needed for spreadsheets
    from openpyxl.utils.exceptions import InvalidFileException

    if not path.is_file():
        _read_bytes(path)  # raises the same readable error as for other formats
    _check_zip(path, limits)
    try:
        # Formulas as written (data_only=False), so that they can be refused: a cached result may be stale
        # or absent, and a formula is no station data.
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        # A renamed .xls or CSV, a damaged download, a password-protected workbook...
        raise ImportFileError(
            Text(N_("{name} is not a readable .xlsx workbook ({error})"), name=path.name, error=str(exc))
        ) from None
    try:
        sheet = workbook.worksheets[0]
        # Stored dimensions are often wrong in files written by other tools; read what is really there and
        # take row numbers from the cells themselves so they match what Excel shows.
        sheet.reset_dimensions()  # type: ignore[union-attr]
        rows: list[tuple[int, Sequence[Any]]] = []
        formulas: dict[int, list[int]] = {}
        for cells in sheet.iter_rows():
            number = next((cell.row for cell in cells if getattr(cell, "row", None)), None)
            if number is not None:
                if len(rows) > limits.max_rows:  # the header, then at most max_rows
                    raise _too_many_rows(limits)
                rows.append((number, tuple(cell.value for cell in cells)))
                found = [i for i, cell in enumerate(cells) if getattr(cell, "data_type", None) == "f"]
                if found:
                    formulas[number] = found
    finally:
        workbook.close()
    if not rows:
        raise ImportFileError(Text(N_("the first worksheet is empty")))
    return _parse_table(rows, parser, progress, strict_width=False, formulas=formulas)


# ------------------------------------------------------------------------------------------------ GeoJSON


def _parse_geojson(
    path: Path, parser: _RowParser, progress: Progress | None, limits: ImportLimits
) -> ParsedImport:
    text = _decode(_read_bytes(path))
    if not text.strip():
        raise ImportFileError(Text(N_("the file is empty")))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            Text(
                N_("not valid JSON: {error} at line {line}, column {column}"),
                error=exc.msg,
                line=exc.lineno,
                column=exc.colno,
            )
        ) from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportFileError(Text(N_("the GeoJSON file must contain a FeatureCollection")))
    features = document.get("features")
    if not isinstance(features, list):
        raise ImportFileError(Text(N_("the FeatureCollection has no list of features")))
    if len(features) > limits.max_rows:
        raise _too_many_rows(limits)
    total = len(features)
    records: list[StationRecord] = []
    errors: list[RowError] = []
    record_rows: list[int] = []
    unknown: dict[str, None] = {}  # ordered set
    key_cache: dict[str, str | None] = {}
    seen_labels: list[str] = []
    for number, feature in enumerate(features, start=1):
        if progress is not None and number % _PROGRESS_EVERY == 0:
            progress(number, total)
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            kind = geometry.get("type") if isinstance(geometry, dict) else "missing"
            problem = Text(N_("the geometry must be a Point (found {kind})"), kind=kind)
            errors.append(RowError.of(number, [problem], "feature"))
            continue
        coordinates = geometry.get("coordinates")
        if not isinstance(coordinates, list) or len(coordinates) < 2:
            problem = Text(N_("the Point has no [longitude, latitude] coordinates"))
            errors.append(RowError.of(number, [problem], "feature"))
            continue
        values: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for key, value in (properties or {}).items() if isinstance(properties, dict) else ():
            if key not in key_cache:
                key_cache[key] = column_for_header(key)
                seen_labels.append(key)
            name = key_cache[key]
            if name is None:
                unknown[key] = None
            elif name not in values or values[name] in (None, ""):
                values[name] = value
                labels[name] = key
        # The geometry is the position; lat/lon properties (which our own export writes) are ignored.
        values["lon"], values["lat"] = coordinates[0], coordinates[1]
        labels["lon"], labels["lat"] = "longitude", "latitude"
        result = parser.parse(values, labels, number)
        if isinstance(result, RowError):
            errors.append(result)
        else:
            records.append(result)
            record_rows.append(number)
    if progress is not None:
        progress(total, total)
    warnings: list[str] = []
    if unknown:
        warnings.append(Text(N_("ignored properties not recognised: {names}"), names=", ".join(unknown)))
    lang = header_language(label for label in seen_labels if column_for_header(label) is not None)
    return ParsedImport(records, errors, len(records) + len(errors), warnings, lang, rows=record_rows)


# ------------------------------------------------------------------------------------------------- public


_FORMATS = {
    ".csv": _parse_csv,
    ".txt": _parse_csv,
    ".geojson": _parse_geojson,
    ".json": _parse_geojson,
    ".xlsx": _parse_xlsx,
}


def parse_station_file(
    path: Path,
    crs: CRS = CRS.WGS84,
    default_tz: str | None = None,
    progress: Progress | None = None,
    limits: ImportLimits | None = None,
) -> ParsedImport:
    """Read a station file (.csv/.txt, .geojson/.json, .xlsx) whose coordinates are in `crs`.

    Records come back in WGS-84, rounded to 7 decimals; rejected rows come back as `RowError`s. Raises
    `ImportFileError` when the file as a whole cannot be used. `default_tz` fills `timezone` for rows that
    give none. `progress(done, total)` is called every few thousand rows and once at the end. `limits`
    (default `ImportLimits()`) are checked before the content is parsed. CPU-bound: call it from a worker
    thread in async code.
    """
    path = Path(path)
    handler = _FORMATS.get(path.suffix.lower())
    if handler is None:
        if path.suffix.lower() == ".xls":
            message = N_(
                "cannot import {name}: unknown file type {suffix} (save it as .xlsx or CSV); "
                "use .csv, .txt, .xlsx, .geojson or .json"
            )
        else:
            message = N_(
                "cannot import {name}: unknown file type {suffix}; use .csv, .txt, .xlsx, .geojson or .json"
            )
        raise ImportFileError(Text(message, name=repr(path.name), suffix=repr(path.suffix or "(none)")))
    crs = CRS(crs)
    if default_tz is not None:
        try:
            ZoneInfo(default_tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown default timezone {default_tz!r}") from None
    limits = limits or ImportLimits()
    _check_size(path, limits)
    parser = _RowParser(crs, default_tz, "feature" if handler is _parse_geojson else "row")
    return handler(path, parser, progress, limits)


def _export_row(record: StationRecord) -> list[str]:  # in EXPORT_COLUMNS order
    return [
        record.code,
        record.name,
        record.address,
        f"{record.lat:.7f}",
        f"{record.lon:.7f}",
        record.opening_hours,
        ";".join(record.amenities),
        record.phone,
        record.manager,
        record.host,
        record.region,
        StationStatus(record.status).value,
        record.timezone or "",
        record.verified_at.isoformat() if record.verified_at else "",
        record.opening_hours_text,
    ]


_NUMBER_COLUMNS = (EXPORT_COLUMNS.index("lat"), EXPORT_COLUMNS.index("lon"))


def _guarded_row(record: StationRecord) -> list[str]:
    # Text a spreadsheet would run as a formula is neutralised; coordinates are numbers, never formulas.
    return [cell if i in _NUMBER_COLUMNS else _guard(cell) for i, cell in enumerate(_export_row(record))]


def write_csv(records: Iterable[StationRecord], out: TextIO, header: bool = True) -> None:
    """Write records as CSV with the English header. Open `out` with encoding="utf-8" and newline="".

    A BOM is written first so that Excel in China opens the file as UTF-8 rather than GB18030. Without
    `header` only the rows are written (the next part of an export written piece by piece).
    """
    writer = csv.writer(out, lineterminator="\r\n")  # what Excel itself writes
    if header:
        out.write("\ufeff")
        writer.writerow(EXPORT_COLUMNS)
    for record in records:
        writer.writerow(_guarded_row(record))


def csv_text(records: Iterable[StationRecord], header: bool = False) -> str:
    """`write_csv` into a string: one part of an export sent as it is read."""
    out = io.StringIO(newline="")
    write_csv(records, out, header)
    return out.getvalue()


class XlsxExport:
    """An export as an .xlsx workbook, filled a batch at a time (openpyxl's write-only mode keeps rows on
    disk, not in memory), then saved. Same columns and values as `write_csv`; coordinates are numbers.

    A text cell that a spreadsheet would read as a formula is written as text with Excel's quote prefix
    (the apostrophe of a CSV export, `_guard`), so the value itself is unchanged and re-imports as it was.
    Characters that XML cannot hold (control characters other than tab and line breaks) are dropped."""

    def __init__(self) -> None:
        import openpyxl  # only needed for spreadsheets
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        self._cell = WriteOnlyCell
        self._illegal = ILLEGAL_CHARACTERS_RE
        self.workbook = openpyxl.Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet("stations")
        self.sheet.append(list(EXPORT_COLUMNS))
        self.rows = 0

    def _text_cell(self, value: str) -> Any:
        value = self._illegal.sub("", value)
        if not value.lstrip("'").startswith(_FORMULA_START):
            return value
        cell = self._cell(self.sheet, value=value)
        cell.data_type = "s"  # openpyxl takes a leading "=" for a formula
        cell.quotePrefix = True
        return cell

    def add(self, records: Iterable[StationRecord]) -> None:
        for record in records:
            row: list[Any] = [self._text_cell(cell) for cell in _export_row(record)]
            for i in _NUMBER_COLUMNS:
                row[i] = record.lat if EXPORT_COLUMNS[i] == "lat" else record.lon
            self.sheet.append(row)
            self.rows += 1

    def save(self, out: Path | BinaryIO) -> None:
        self.workbook.save(out)


def geojson_feature(record: StationRecord) -> dict[str, Any]:
    """One record as the GeoJSON Feature of an export: a Point ([lon, lat], WGS-84) with the export columns
    as properties."""
    properties: dict[str, Any] = dict(zip(EXPORT_COLUMNS, _export_row(record), strict=True))
    # Native JSON types where they exist, so that other GIS tools read them without conversion.
    properties.update(
        lat=record.lat,
        lon=record.lon,
        amenities=list(record.amenities),
        timezone=record.timezone,
        verified_at=record.verified_at.isoformat() if record.verified_at else None,
    )
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [record.lon, record.lat]},
        "properties": properties,
    }


#: What a GeoJSON export writes before, between and after its features (one feature a line).
GEOJSON_HEAD = '{"type": "FeatureCollection", "features": ['
GEOJSON_SEPARATOR = ",\n"
GEOJSON_TAIL = "\n]}\n"


def write_geojson(records: Iterable[StationRecord], out: TextIO) -> None:
    """Write records as a GeoJSON FeatureCollection of Points ([lon, lat], WGS-84), one feature a line."""
    out.write(GEOJSON_HEAD)
    separator = "\n"
    for record in records:
        out.write(separator + json.dumps(geojson_feature(record), ensure_ascii=False))
        separator = GEOJSON_SEPARATOR
    out.write(GEOJSON_TAIL)
