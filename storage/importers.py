"""Reading and writing station files as union clerks produce them: CSV, XLSX and GeoJSON.

`parse_station_file` turns a file into `StationRecord`s (WGS-84, validated) plus one `RowError` per rejected
row, numbered as the clerk sees it in Excel (the header is row 1) or as "feature N" in GeoJSON. It never
touches the database: the caller upserts `ParsedImport.records` by code in one transaction. `write_csv` and
`write_geojson` export records in the same formats so that an export re-imports to equal records.

Decisions worth knowing:
- every problem in a row is reported, joined by "; " (a clerk fixes a row once, not once per problem);
  a row with the wrong number of cells reports only that, because its other cells are probably shifted;
- `total_rows` counts non-blank data rows, so `len(records) + len(errors) == total_rows`;
- naive `verified_at` values (a bare date, as Excel writes it) are read in the station's timezone (its own
  column, else `default_tz`, else Asia/Shanghai), so records always carry aware datetimes;
- opening hours are NFKC-normalised (full-width digits, colons and dashes typed in Chinese IMEs become
  ASCII) before validation, so the stored expression is the one that was validated.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import operator
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.clock import DEFAULT_TZ
from domain.coords import out_of_china, to_wgs84
from domain.hours import validate_hours
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
    "ImportFileError",
    "ParsedImport",
    "RowError",
    "geojson_feature",
    "parse_station_file",
    "write_csv",
    "write_geojson",
]

#: Columns of an export, in ARCHITECTURE.md order plus the two optional ones.
EXPORT_COLUMNS: tuple[str, ...] = (
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
    "timezone",
    "verified_at",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("name", "lat", "lon")

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


@dataclass
class RowError:
    """One rejected row. `row` is the Excel row number (header = 1) or the GeoJSON feature number (from 1)."""

    row: int
    reason: str
    unit: str = "row"

    def __str__(self) -> str:
        return f"{self.unit} {self.row}: {self.reason}"


@dataclass
class ParsedImport:
    records: list[StationRecord]
    errors: list[RowError]
    total_rows: int
    warnings: list[str] = field(default_factory=list)


Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------- helpers


def _fold(text: str) -> str:
    """Case-, width- and space-insensitive form used to match headers and amenity labels."""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", text).casefold())


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
            "the file is neither UTF-8 nor GB18030 text; save it from Excel as CSV (UTF-8) and try again"
        ) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


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
        self._hours_cache: dict[str, str | None] = {}
        self._amenity_cache: dict[str, tuple[tuple[str, ...], list[str]]] = {}
        self._tz_cache: dict[str, ZoneInfo | None] = {}
        self._amenity_items: dict[str, str | None] = {}
        self._status_cache: dict[str, StationStatus | None] = {}

    # Each check appends human-readable reasons to `problems` and returns the clean value.

    def _coordinate(self, raw: Any, label: str, what: str, problems: list[str]) -> float | None:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            problems.append(f"{label} is empty; a {what} is required")
            return None
        try:
            return _to_float(raw)
        except (ValueError, TypeError):
            problems.append(f"{label} {_text(raw)!r} is not a number")
            return None

    def _position(
        self, values: dict[str, Any], labels: dict[str, str], problems: list[str]
    ) -> tuple[float, float] | None:
        lat = self._coordinate(values.get("lat"), labels.get("lat", "latitude"), "latitude", problems)
        lon = self._coordinate(values.get("lon"), labels.get("lon", "longitude"), "longitude", problems)
        if lat is None or lon is None:
            return None
        lat_ok = -90.0 <= lat <= 90.0
        lon_ok = -180.0 <= lon <= 180.0
        swapped = " (latitude and longitude look swapped)" if -90 <= lon <= 90 and -180 <= lat <= 180 else ""
        if not lat_ok:
            problems.append(f"latitude {lat:g} is out of range (must be between -90 and 90){swapped}")
        if not lon_ok:
            problems.append(f"longitude {lon:g} is out of range (must be between -180 and 180)")
        if not (lat_ok and lon_ok):
            return None
        if self.crs is not CRS.WGS84 and out_of_china(lat, lon):
            problems.append(
                f"coordinates {lat:g}, {lon:g} are outside China, so they cannot be "
                f"{self.crs.value.upper()}; check the coordinate system chosen for the import and that "
                "latitude and longitude are not swapped"
            )
            return None
        wlat, wlon = to_wgs84(lat, lon, self.crs)
        return round(wlat, 7), round(wlon, 7)

    def _opening_hours(self, raw: Any, problems: list[str]) -> str:
        expression = unicodedata.normalize("NFKC", _text(raw))
        if not expression:
            return ""  # unknown hours are allowed: the station shows "hours unknown"
        if expression not in self._hours_cache:
            try:
                validate_hours(expression)
                self._hours_cache[expression] = None
            except InvalidOpeningHours as exc:
                # One line per rejected row in the report: fold the parser's multi-line hints.
                self._hours_cache[expression] = re.sub(r"\s*\n\s*", "; ", exc.message.strip())
        message = self._hours_cache[expression]
        if message is not None:
            problems.append(f"opening hours {expression!r} are not valid: {message}")
        return expression

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
            problems.append(f"unknown amenity {item!r} (accepted: {_AMENITY_HINT}, or the English keys)")
        return amenities

    def _status(self, raw: Any, problems: list[str]) -> StationStatus:
        text = _text(raw)
        if not text:
            return StationStatus.ACTIVE
        if text not in self._status_cache:
            self._status_cache[text] = _STATUS_WORDS.get(re.sub(r"[\s\-]+", "_", text.casefold()))
        status = self._status_cache[text]
        if status is None:
            problems.append(
                f"unknown status {text!r} (use active, temporarily_closed or closed; or 正常, 暂停, 关闭)"
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
                f"unknown timezone {name!r} (use an IANA name such as Asia/Shanghai or Asia/Urumqi)"
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
            problems.append(f"verification date {_text(raw)!r} is not a date (use YYYY-MM-DD)")
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone(tz_name or DEFAULT_TZ) or ZoneInfo(DEFAULT_TZ))
        return parsed

    def parse(self, values: dict[str, Any], labels: dict[str, str], row: int) -> StationRecord | RowError:
        """One row → a record, or an error listing every problem found in it."""
        problems: list[str] = []
        name = _text(values.get("name"))
        if not name:
            problems.append(f"the station name ({labels.get('name', 'name')}) is empty")
        code = _text(values.get("code"))
        if code:
            first = self.seen_codes.setdefault(code, row)
            if first != row:
                problems.append(f"code {code!r} is repeated: {self.unit} {first} already has it")
        position = self._position(values, labels, problems)
        opening_hours = self._opening_hours(values.get("opening_hours"), problems)
        amenities = self._amenities(values.get("amenities"), problems)
        status = self._status(values.get("status"), problems)
        timezone = self._timezone(values.get("timezone"), problems)
        verified_at = self._verified_at(values.get("verified_at"), timezone, problems)
        if not problems and position is not None and not code:
            code = generated_code(name, *position)
            first = self.seen_codes.setdefault(code, row)
            if first != row:
                problems.append(f"same name and coordinates as {self.unit} {first} (neither has a code)")
        if problems or position is None:
            return RowError(row, "; ".join(problems), self.unit)
        return StationRecord(
            code=code,
            name=name,
            lat=position[0],
            lon=position[1],
            address=_text(values.get("address")),
            region=_text(values.get("region")),
            host=_text(values.get("host")),
            opening_hours=opening_hours,
            amenities=amenities,
            phone=_text(values.get("phone")),
            manager=_text(values.get("manager")),
            status=status,
            timezone=timezone,
            verified_at=verified_at,
        )


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
            raise ImportFileError(f"columns {labels[name]!r} and {text!r} both mean {name}; keep only one")
        else:
            columns[name] = index
            labels[name] = text
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        found = ", ".join(_text(cell) for cell in header if _text(cell)) or "none"
        wanted = ", ".join(f"{name} ({COLUMN_LABELS_ZH[name]})" for name in missing)
        raise ImportFileError(f"missing required column(s): {wanted}; columns found: {found}")
    return columns, labels, unknown


def _parse_table(
    rows: Sequence[tuple[int, Sequence[Any]]],
    parser: _RowParser,
    progress: Progress | None,
    strict_width: bool,
) -> ParsedImport:
    """Rows as (Excel row number, cells), the header first. `strict_width` rejects short/long CSV rows."""
    header_at = next((i for i, (_, cells) in enumerate(rows) if not _is_blank(cells)), None)
    if header_at is None:
        raise ImportFileError("the file is empty: no header row")
    columns, labels, unknown = _map_header(rows[header_at][1])
    warnings = [f"ignored columns not recognised: {', '.join(unknown)}"] if unknown else []
    width = len(rows[header_at][1])
    names = tuple(columns)
    pick = operator.itemgetter(*columns.values())
    data = rows[header_at + 1 :]
    total = len(data)
    records: list[StationRecord] = []
    errors: list[RowError] = []
    for done, (row_number, cells) in enumerate(data, start=1):
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, total)
        if _is_blank(cells):
            continue
        if strict_width and len(cells) != width:
            if len(cells) < width:
                errors.append(
                    RowError(
                        row_number,
                        f"the row has only {len(cells)} cells but the header has {width}; "
                        "a separator or a cell is missing",
                    )
                )
                continue
            if not _is_blank(cells[width:]):
                errors.append(
                    RowError(
                        row_number,
                        f"the row has {len(cells)} cells but the header has {width}; "
                        "a value probably contains an unquoted separator",
                    )
                )
                continue
        if len(cells) < width:  # XLSX rows end at their last filled cell
            cells = (*cells, *(None,) * (width - len(cells)))
        values = dict(zip(names, pick(cells), strict=True))
        result = parser.parse(values, labels, row_number)
        if isinstance(result, RowError):
            errors.append(result)
        else:
            records.append(result)
    if progress is not None:
        progress(total, total)
    if total == 0:
        warnings.append("the file has a header but no data rows")
    return ParsedImport(records, errors, len(records) + len(errors), warnings)


def _sniff_delimiter(text: str) -> str:
    first_line = next((line for line in text[:65_536].splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", "\t", ";")}
    # Comma unless the header clearly uses another separator (and no commas at all would be odd for it).
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > counts[","] else ","


def _parse_csv(path: Path, parser: _RowParser, progress: Progress | None) -> ParsedImport:
    text = _decode(_read_bytes(path))
    if not text.strip():
        raise ImportFileError("the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    try:
        # Records, not physical lines: a quoted cell may contain a line break and still be one Excel row.
        # Tuples of strings, unlike lists, drop out of the garbage collector's sight after one pass, which
        # keeps full collections cheap while 186,100 rows are in memory (measured: -2 s).
        rows = [(number, tuple(cells)) for number, cells in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise ImportFileError(f"the CSV file is malformed near line {reader.line_num}: {exc}") from None
    return _parse_table(rows, parser, progress, strict_width=True)


def _parse_xlsx(path: Path, parser: _RowParser, progress: Progress | None) -> ParsedImport:
    import openpyxl  # only needed for spreadsheets
    from openpyxl.utils.exceptions import InvalidFileException

    if not path.is_file():
        _read_bytes(path)  # raises the same readable error as for other formats
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        # A renamed .xls or CSV, a damaged download, a password-protected workbook...
        raise ImportFileError(f"{path.name} is not a readable .xlsx workbook ({exc})") from None
    try:
        sheet = workbook.worksheets[0]
        # Stored dimensions are often wrong in files written by other tools; read what is really there and
        # take row numbers from the cells themselves so they match what Excel shows.
        sheet.reset_dimensions()  # type: ignore[union-attr]
        rows: list[tuple[int, Sequence[Any]]] = []
        for cells in sheet.iter_rows():
            number = next((cell.row for cell in cells if getattr(cell, "row", None)), None)
            if number is not None:
                rows.append((number, tuple(cell.value for cell in cells)))
    finally:
        workbook.close()
    if not rows:
        raise ImportFileError("the first worksheet is empty")
    return _parse_table(rows, parser, progress, strict_width=False)


# ------------------------------------------------------------------------------------------------ GeoJSON


def _parse_geojson(path: Path, parser: _RowParser, progress: Progress | None) -> ParsedImport:
    text = _decode(_read_bytes(path))
    if not text.strip():
        raise ImportFileError("the file is empty")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportFileError("the GeoJSON file must contain a FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise ImportFileError("the FeatureCollection has no list of features")
    total = len(features)
    records: list[StationRecord] = []
    errors: list[RowError] = []
    unknown: dict[str, None] = {}  # ordered set
    key_cache: dict[str, str | None] = {}
    for number, feature in enumerate(features, start=1):
        if progress is not None and number % _PROGRESS_EVERY == 0:
            progress(number, total)
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            kind = geometry.get("type") if isinstance(geometry, dict) else "missing"
            errors.append(RowError(number, f"the geometry must be a Point (found {kind})", "feature"))
            continue
        coordinates = geometry.get("coordinates")
        if not isinstance(coordinates, list) or len(coordinates) < 2:
            errors.append(RowError(number, "the Point has no [longitude, latitude] coordinates", "feature"))
            continue
        values: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for key, value in (properties or {}).items() if isinstance(properties, dict) else ():
            if key not in key_cache:
                key_cache[key] = column_for_header(key)
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
    if progress is not None:
        progress(total, total)
    warnings = [f"ignored properties not recognised: {', '.join(unknown)}"] if unknown else []
    return ParsedImport(records, errors, len(records) + len(errors), warnings)


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
) -> ParsedImport:
    """Read a station file (.csv/.txt, .geojson/.json, .xlsx) whose coordinates are in `crs`.

    Records come back in WGS-84, rounded to 7 decimals; rejected rows come back as `RowError`s. Raises
    `ImportFileError` when the file as a whole cannot be used. `default_tz` fills `timezone` for rows that
    give none. `progress(done, total)` is called every few thousand rows and once at the end. CPU-bound:
    call it from a worker thread in async code.
    """
    path = Path(path)
    handler = _FORMATS.get(path.suffix.lower())
    if handler is None:
        hint = " (save it as .xlsx or CSV)" if path.suffix.lower() == ".xls" else ""
        raise ImportFileError(
            f"cannot import {path.name!r}: unknown file type {path.suffix or '(none)'!r}{hint}; "
            "use .csv, .txt, .xlsx, .geojson or .json"
        )
    crs = CRS(crs)
    if default_tz is not None:
        try:
            ZoneInfo(default_tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown default timezone {default_tz!r}") from None
    parser = _RowParser(crs, default_tz, "feature" if handler is _parse_geojson else "row")
    return handler(path, parser, progress)


def _export_row(record: StationRecord) -> list[str]:
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
    ]


def write_csv(records: Iterable[StationRecord], out: TextIO) -> None:
    """Write records as CSV with the English header. Open `out` with encoding="utf-8" and newline="".

    A BOM is written first so that Excel in China opens the file as UTF-8 rather than GB18030.
    """
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")  # what Excel itself writes
    writer.writerow(EXPORT_COLUMNS)
    for record in records:
        writer.writerow(_export_row(record))


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
