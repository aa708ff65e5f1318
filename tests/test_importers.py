"""Station file import and export: what a clerk's CSV, XLSX or GeoJSON becomes, and what is refused."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from geopy.distance import geodesic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.i18n import translator
from domain.coords import wgs84_to_bd09, wgs84_to_gcj02
from domain.hours import validate_hours
from domain.values import (
    AMENITY_KEYS,
    CRS,
    InvalidOpeningHours,
    StationRecord,
    StationStatus,
    YizhanError,
)
from storage.importers import (
    ImportFileError,
    ParsedImport,
    RowError,
    check_station,
    parse_station_file,
    write_csv,
    write_geojson,
)

HEADER = "code,name,lat,lon,opening_hours,amenities,status"
ZH_HEADER = "站点编号,站点名称,地址,纬度,经度,开放时间,服务设施,联系电话,管理人,所属单位,行政区划代码,状态"

UNKNOWN_TV = (
    "unknown amenity '电视' (accepted: 饮水, 热饭, 休息座椅, 卫生间, 手机充电, 电动车充电, 医药箱, "
    "雨具借用, 空调避暑, 冬季取暖, 无线上网, 书报阅览, 法律援助, 衣物缝补, or the English keys)"
)
UNKNOWN_STATUS = "unknown status '装修中' (use active, temporarily_closed or closed; or 正常, 暂停, 关闭)"

#: WGS-84 truths spread over China (far north, Hainan, Xinjiang, Tibet, the coast...).
CHINA_POINTS: list[tuple[float, float]] = [
    (52.97, 122.54),  # Mohe
    (18.25, 109.51),  # Sanya
    (43.8256, 87.6168),  # Urumqi
    (39.4704, 75.9898),  # Kashgar
    (23.1291, 113.2644),  # Guangzhou
    (31.2304, 121.4737),  # Shanghai
    (29.6520, 91.1721),  # Lhasa
    (39.9042, 116.4074),  # Beijing
    (45.8038, 126.5350),  # Harbin
    (48.3646, 134.2896),  # Fuyuan
    (30.5728, 104.0668),  # Chengdu
    (24.8801, 102.8329),  # Kunming
    (36.6171, 101.7782),  # Xining
    (40.8424, 111.7490),  # Hohhot
    (26.0745, 119.2965),  # Fuzhou
    (36.0160, 106.2425),  # Guyuan
    (30.5928, 114.3055),  # Wuhan
    (34.3416, 108.9398),  # Xi'an
    (22.5431, 114.0579),  # Shenzhen
    (21.2707, 110.3594),  # Zhanjiang
]


def write_file(tmp_path: Path, text: str, name: str = "stations.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def parse_csv(tmp_path: Path, text: str, **kwargs: object) -> ParsedImport:
    return parse_station_file(write_file(tmp_path, text), **kwargs)  # type: ignore[arg-type]


def only_error(result: ParsedImport) -> RowError:
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def parser_message(expression: str) -> str:
    try:
        validate_hours(expression)
    except InvalidOpeningHours as exc:
        return exc.message
    raise AssertionError(f"{expression!r} was expected to be invalid")


# ------------------------------------------------------------------------------------------ valid rows


def test_valid_row_becomes_a_station_record(tmp_path: Path) -> None:
    result = parse_csv(
        tmp_path,
        HEADER + "\nGZ-001,天河驿站,23.1291,113.2644,Mo-Su 08:00-20:00,toilet;drinking_water,active\n",
    )
    assert result.errors == []
    assert result.total_rows == 1
    assert result.records == [
        StationRecord(
            code="GZ-001",
            name="天河驿站",
            lat=23.1291,
            lon=113.2644,
            opening_hours="Mo-Su 08:00-20:00",
            amenities=("drinking_water", "toilet"),
        )
    ]


def test_blank_rows_are_skipped_silently_but_still_count_as_excel_rows(tmp_path: Path) -> None:
    text = HEADER + "\nA,站一,39.9,116.4,,,\n\n,,,,,,\nB,站二,95,116.4,,,\n"
    result = parse_csv(tmp_path, text)
    assert [r.code for r in result.records] == ["A"]
    assert only_error(result).row == 5
    assert result.total_rows == 2


def test_a_cell_with_a_line_break_is_one_excel_row(tmp_path: Path) -> None:
    text = HEADER + '\nA,"站一\n二楼",39.9,116.4,,,\nB,站二,95,116.4,,,\n'
    result = parse_csv(tmp_path, text)
    assert result.records[0].name == "站一\n二楼"
    assert only_error(result).row == 3


def test_whitespace_is_stripped_and_full_width_numbers_are_understood(tmp_path: Path) -> None:
    text = HEADER + "\n A , 站一 ,３９．９０４２,１１６，４０７４,,,\nB,站二, 39。9 ,１１６.４,,,\n"
    result = parse_csv(tmp_path, text)
    assert result.errors == []
    assert [(r.code, r.name, r.lat, r.lon) for r in result.records] == [
        ("A", "站一", 39.9042, 116.4074),
        ("B", "站二", 39.9, 116.4),
    ]


def test_unknown_columns_are_ignored_with_one_warning(tmp_path: Path) -> None:
    result = parse_csv(tmp_path, "name,lat,lon,备注,序号\n站一,39.9,116.4,x,1\n站二,39.8,116.4,y,2\n")
    assert len(result.records) == 2
    assert result.warnings == ["ignored columns not recognised: 备注, 序号"]


# ---------------------------------------------------------------------------------------- rejections


def test_text_longer_than_its_column_is_refused_naming_the_column(tmp_path: Path) -> None:
    text = "站点名称,纬度,经度,地址,联系电话\n" + "站" * 201 + ",39.9,116.4," + "路" * 301 + ",1\n"
    error = only_error(parse_csv(tmp_path, text))
    assert error.problems == (
        "站点名称 has 201 characters; at most 200",
        "地址 has 301 characters; at most 300",
    )
    zh = translator("zh_Hans").gettext
    assert (
        error.translated(zh) == "第 2 行：站点名称有 201 个字符，最多 200 个；地址有 301 个字符，最多 300 个"
    )


def test_one_stations_values_are_checked_field_by_field() -> None:
    record, problems = check_station(
        {"name": "站", "lat": "23.1", "lon": "113.3", "opening_hours": "周一至周五 9:00-17:00"}
    )
    assert problems == {} and record is not None
    assert (record.opening_hours, record.opening_hours_text) == ("Mo-Fr 09:00-17:00", "周一至周五 9:00-17:00")
    record, problems = check_station({"name": "", "lat": "95", "lon": "113.3", "timezone": "Mars/Olympus"})
    assert record is None and set(problems) == {"name", "position", "timezone"}


def test_rejects_latitude_out_of_range(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,站一,39.9,116.4,,,\nB,站二,95.5,116.4,,,\n"))
    assert error.row == 3
    assert error.reason == "latitude 95.5 is out of range (must be between -90 and 90)"
    assert str(error) == "row 3: latitude 95.5 is out of range (must be between -90 and 90)"


def test_rejects_longitude_out_of_range(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,站一,39.9,216.4,,,\n"))
    assert (error.row, error.reason) == (2, "longitude 216.4 is out of range (must be between -180 and 180)")


def test_latitude_out_of_range_hints_at_swapped_columns(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,站一,116.4,39.9,,,\n"))
    assert "latitude 116.4 is out of range" in error.reason
    assert "swapped" in error.reason


def test_rejects_coordinate_that_is_not_a_number_naming_column_and_value(tmp_path: Path) -> None:
    text = "站点名称,纬度,经度\n站一,北纬39.9,116.4\n"
    error = only_error(parse_csv(tmp_path, text))
    assert (error.row, error.reason) == (2, "纬度 '北纬39.9' is not a number")


def test_rejects_empty_coordinate(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, "name,lat,lon\n站一,39.9,\n"))
    assert (error.row, error.reason) == (2, "lon is empty; a longitude is required")


def test_rejects_gcj02_coordinates_outside_china(tmp_path: Path) -> None:
    text = "name,lat,lon\n北京站,39.9,116.4\nLondon,51.5074,-0.1278\n"
    error = only_error(parse_csv(tmp_path, text, crs=CRS.GCJ02))
    assert error.row == 3
    assert error.reason.startswith("coordinates 51.5074, -0.1278 are outside China, so they cannot be GCJ02")


def test_wgs84_coordinates_outside_china_are_accepted(tmp_path: Path) -> None:
    result = parse_csv(tmp_path, "name,lat,lon\nLondon,51.5074,-0.1278\n")
    assert result.errors == [] and result.records[0].lat == 51.5074


def test_rejects_opening_hours_the_parser_refuses_with_its_message(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,站一,39.9,116.4,Mo-Fr 25:00-26:00,,\n"))
    assert error.row == 2
    assert error.reason == (
        "opening hours 'Mo-Fr 25:00-26:00' are not valid: at “25:00-26:00” (character 7): expected the "
        "end of the text / a rule separator (; , ||) / open, closed, off or unknown / a time range "
        "(HH:MM-HH:MM) / PH or SH."
    )
    assert parser_message("Mo-Fr 25:00-26:00")  # the parser refuses it too


def test_the_parsers_refusal_reads_in_the_sheets_language_with_its_hint(tmp_path: Path) -> None:
    result = parse_csv(tmp_path, ZH_HEADER + "\nA,站一,,39.9,116.4,call first,,,,,,\n")
    (error,) = result.errors
    zh = error.translated(translator("zh_Hans").gettext)
    assert zh.startswith("第 2 行：开放时间 'call first' 无效：在“call”处（第 1 个字符）：这里应为 ")
    assert zh.endswith('；说明文字要写在英文双引号里作为备注，例如 "by appointment"。')
    assert "\n" not in zh and "expected" not in zh  # one line per row, nothing left in English


def test_full_width_opening_hours_are_normalised_before_validation(tmp_path: Path) -> None:
    result = parse_csv(tmp_path, HEADER + "\nA,站一,39.9,116.4,Ｍｏ-Ｆｒ ０８：００－２０：００,,\n")
    assert result.errors == []
    assert result.records[0].opening_hours == "Mo-Fr 08:00-20:00"


def test_rejects_unknown_amenity_naming_it(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,站一,39.9,116.4,,饮水、电视、电视,\n"))
    assert error.row == 2
    assert error.reason == UNKNOWN_TV  # named once, with what is accepted instead


def test_rejects_repeated_code_naming_the_earlier_row(tmp_path: Path) -> None:
    text = HEADER + "\nA,站一,39.9,116.4,,,\nB,站二,39.8,116.4,,,\nA,站三,39.7,116.4,,,\n"
    result = parse_csv(tmp_path, text)
    assert [r.code for r in result.records] == ["A", "B"]
    error = only_error(result)
    assert (error.row, error.reason) == (4, "code 'A' is repeated: row 2 already has it")


def test_rows_without_code_but_same_name_and_place_are_duplicates(tmp_path: Path) -> None:
    text = "name,lat,lon\n站一,39.9,116.4\n站一,39.9,116.4\n"
    error = only_error(parse_csv(tmp_path, text))
    assert (error.row, error.reason) == (3, "same name and coordinates as row 2 (neither has a code)")


def test_rejects_empty_name(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, "站点名称,纬度,经度\n  ,39.9,116.4\n"))
    assert (error.row, error.reason) == (2, "the station name (站点名称) is empty")


def test_rejects_short_row(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,站一,39.9,116.4,,,\nB,站二,39.9\n"))
    assert error.row == 3
    assert error.reason == "the row has only 3 cells but the header has 7; a separator or a cell is missing"


def test_rejects_long_row_with_an_unquoted_separator_but_not_trailing_empty_cells(tmp_path: Path) -> None:
    text = "name,lat,lon\n站一,39.9,116.4,,\n站二,分店,39.9,116.4\n"
    result = parse_csv(tmp_path, text)
    assert [r.name for r in result.records] == ["站一"]
    error = only_error(result)
    assert error.row == 3
    assert error.reason.startswith("the row has 4 cells but the header has 3")


def test_rejects_unknown_status(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,站一,39.9,116.4,,,装修中\n"))
    assert error.row == 2
    assert error.reason == UNKNOWN_STATUS


def test_rejects_unknown_timezone(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, "name,lat,lon,timezone\n站一,39.9,116.4,Asia/Beijing\n"))
    assert error.row == 2
    assert error.reason.startswith("unknown timezone 'Asia/Beijing'")


def test_rejects_bad_verified_at_date(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, "name,lat,lon,核验日期\n站一,39.9,116.4,2024-13-45\n"))
    assert (error.row, error.reason) == (2, "verification date '2024-13-45' is not a date (use YYYY-MM-DD)")


def test_every_problem_of_a_row_is_reported_joined_by_semicolons(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, HEADER + "\nA,,abc,116.4,,电视,装修中\n"))
    assert error.reason.split("; ")[:3] == [
        "the station name (name) is empty",
        "lat 'abc' is not a number",
        UNKNOWN_TV,
    ]
    assert error.reason.endswith(UNKNOWN_STATUS)


# ---------------------------------------------------------------------------------------- file errors


def test_unknown_extension_is_a_file_error(tmp_path: Path) -> None:
    assert issubclass(ImportFileError, YizhanError)  # the edges map it to a message like any domain error
    with pytest.raises(ImportFileError, match=r"unknown file type '\.xls' \(save it as \.xlsx or CSV\)"):
        parse_station_file(write_file(tmp_path, "x", name="stations.xls"))


def test_unreadable_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        parse_station_file(tmp_path / "missing.csv")


def test_missing_required_columns_are_named_with_the_columns_found(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError) as caught:
        parse_csv(tmp_path, "站点名称,地址,电话\n站一,某路1号,123\n")
    assert str(caught.value) == (
        "missing required column(s): lat (纬度), lon (经度); columns found: 站点名称, 地址, 电话"
    )


def test_two_columns_meaning_the_same_field_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="columns 'lat' and '纬度' both mean lat"):
        parse_csv(tmp_path, "name,lat,纬度,lon\n站一,1,1,116\n")


@pytest.mark.parametrize("text", ["", "  \r\n\r\n"])
def test_empty_file_is_a_file_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ImportFileError, match="empty"):
        parse_csv(tmp_path, text)


def test_header_only_file_imports_nothing_with_a_warning(tmp_path: Path) -> None:
    result = parse_csv(tmp_path, "name,lat,lon\n")
    assert (result.records, result.errors, result.total_rows) == ([], [], 0)
    assert result.warnings == ["the file has a header but no data rows"]


def test_invalid_json_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"not valid JSON: .* at line 1, column"):
        parse_station_file(write_file(tmp_path, '{"type": "FeatureCollection", ', name="s.geojson"))


def test_json_that_is_not_a_feature_collection_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="FeatureCollection"):
        parse_station_file(write_file(tmp_path, "[1, 2]", name="s.json"))


def test_a_renamed_file_is_not_a_workbook(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"not a readable \.xlsx workbook"):
        parse_station_file(write_file(tmp_path, "name,lat,lon\n", name="s.xlsx"))


# ----------------------------------------------------------------------------- encodings and headers


ZH_ROWS = (
    ZH_HEADER + "\r\n"
    "FJ-0001,鼓楼区温泉街道爱心驿站,福州市鼓楼区温泉路1号,26.0745,119.2965,Mo-Su 08:00-20:00,"
    '"饮水、热饭（微波炉）、卫生间、空调",0591-12345678,林师傅,中国电信,350102,正常\r\n'
    "FJ-0002,台江区环卫驿站,福州市台江区,26.05,119.31,24/7,热饭;饮水;饮水,,,,350103,暂停服务\r\n"
)
ZH_EXPECTED = [
    StationRecord(
        code="FJ-0001",
        name="鼓楼区温泉街道爱心驿站",
        lat=26.0745,
        lon=119.2965,
        address="福州市鼓楼区温泉路1号",
        region="350102",
        host="中国电信",
        opening_hours="Mo-Su 08:00-20:00",
        amenities=("drinking_water", "food_heating", "toilet", "air_conditioning"),
        phone="0591-12345678",
        manager="林师傅",
    ),
    StationRecord(
        code="FJ-0002",
        name="台江区环卫驿站",
        lat=26.05,
        lon=119.31,
        address="福州市台江区",
        region="350103",
        opening_hours="24/7",
        amenities=("drinking_water", "food_heating"),
        status=StationStatus.TEMPORARILY_CLOSED,
    ),
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_chinese_headers_and_labels_in_every_excel_encoding(tmp_path: Path, encoding: str) -> None:
    result = parse_station_file(write_file(tmp_path, ZH_ROWS, encoding=encoding))
    assert result.errors == [] and result.warnings == []
    assert result.records == ZH_EXPECTED


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_tab_and_semicolon_separated_files_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["name", "lat", "lon", "amenities"]) + "\n"
    text += delimiter.join(["站一", "39.9", "116.4", "饮水,卫生间"]) + "\n"
    result = parse_csv(tmp_path, text)
    assert result.errors == []
    assert result.records[0].amenities == ("drinking_water", "toilet")


@pytest.mark.parametrize(
    "header",
    [
        "Name,Latitude,Longitude",
        " NAME , LAT , LNG ",
        "名称,纬度,经度",
        "*站点名称,纬度(lat),经度（lon）",
        "station name,latitude,long",
    ],
)
def test_header_synonyms_case_and_spacing(tmp_path: Path, header: str) -> None:
    result = parse_csv(tmp_path, header + "\n站一,39.9,116.4\n")
    assert result.errors == [] and result.warnings == []
    assert (result.records[0].name, result.records[0].lat, result.records[0].lon) == ("站一", 39.9, 116.4)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("drinking_water;toilet", ("drinking_water", "toilet")),
        ("卫生间|饮水", ("drinking_water", "toilet")),
        ("卫生间，饮水, 热饭", ("drinking_water", "food_heating", "toilet")),
        ("热饭（微波炉）、热饭、food_heating", ("food_heating",)),
        ("空调、空调避暑、冬季取暖、Wi-Fi", ("air_conditioning", "heating", "wifi")),
        ("热饭(微波炉); 雨伞; 厕所", ("food_heating", "toilet", "umbrella")),
        ("", ()),
    ],
)
def test_amenities_as_keys_or_labels_deduplicated_in_canonical_order(
    tmp_path: Path, cell: str, expected: tuple[str, ...]
) -> None:
    result = parse_csv(tmp_path, f'name,lat,lon,amenities\n站一,39.9,116.4,"{cell}"\n')
    assert result.records[0].amenities == expected


def test_ambiguous_short_amenity_is_refused(tmp_path: Path) -> None:
    error = only_error(parse_csv(tmp_path, "name,lat,lon,amenities\n站一,39.9,116.4,充电\n"))
    assert error.reason.startswith("unknown amenity '充电'")


def test_every_amenity_key_and_label_is_accepted(tmp_path: Path) -> None:
    from domain.values import AMENITY_LABELS_ZH

    labels = "、".join(reversed(AMENITY_LABELS_ZH.values()))
    keys = ";".join(AMENITY_KEYS)
    result = parse_csv(
        tmp_path, f"name,lat,lon,amenities\n站一,39.9,116.4,{labels}\n站二,39.8,116.4,{keys}\n"
    )
    assert [r.amenities for r in result.records] == [AMENITY_KEYS, AMENITY_KEYS]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("", StationStatus.ACTIVE),
        ("active", StationStatus.ACTIVE),
        ("正常", StationStatus.ACTIVE),
        ("运营中", StationStatus.ACTIVE),
        ("开放", StationStatus.ACTIVE),
        ("Temporarily Closed", StationStatus.TEMPORARILY_CLOSED),
        ("暂停", StationStatus.TEMPORARILY_CLOSED),
        ("暂停服务", StationStatus.TEMPORARILY_CLOSED),
        ("临时关闭", StationStatus.TEMPORARILY_CLOSED),
        ("closed", StationStatus.CLOSED),
        ("关闭", StationStatus.CLOSED),
        ("已关闭", StationStatus.CLOSED),
        ("撤销", StationStatus.CLOSED),
    ],
)
def test_status_words(tmp_path: Path, cell: str, expected: StationStatus) -> None:
    result = parse_csv(tmp_path, f"name,lat,lon,状态\n站一,39.9,116.4,{cell}\n")
    assert result.records[0].status is expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))),
        ("2024/5/1", datetime(2024, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))),
        ("2024年5月1日", datetime(2024, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))),
        ("2024-05-01 09:30", datetime(2024, 5, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))),
        ("2024-05-01T09:30:00+00:00", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_verified_at_dates_become_aware_datetimes(tmp_path: Path, cell: str, expected: datetime) -> None:
    result = parse_csv(tmp_path, f"name,lat,lon,verified_at\n站一,39.9,116.4,{cell}\n")
    verified = result.records[0].verified_at
    assert verified == expected and verified is not None and verified.utcoffset() is not None


def test_naive_verified_at_is_read_in_the_station_timezone(tmp_path: Path) -> None:
    text = "name,lat,lon,时区,核验日期\n喀什驿站,39.47,75.99,Asia/Urumqi,2024-05-01\n"
    record = parse_csv(tmp_path, text).records[0]
    assert record.timezone == "Asia/Urumqi"
    assert record.verified_at is not None and record.verified_at.utcoffset() == timedelta(hours=6)


def test_default_timezone_fills_rows_that_name_none(tmp_path: Path) -> None:
    text = "name,lat,lon,timezone\n站一,39.9,116.4,\n站二,39.47,75.99,Asia/Urumqi\n"
    records = parse_csv(tmp_path, text, default_tz="Asia/Shanghai").records
    assert [r.timezone for r in records] == ["Asia/Shanghai", "Asia/Urumqi"]
    assert parse_csv(tmp_path, text).records[0].timezone is None


# ---------------------------------------------------------------------------------------------- XLSX


def test_xlsx_first_sheet_with_numbers_and_strings(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["站点编号", "站点名称", "纬度", "经度", "服务设施", "联系电话", "行政区划代码", "核验日期"])
    sheet.append(
        [1001, "天河驿站", 23.1291, 113.2644, "饮水、卫生间", 13800138000, 440106, datetime(2024, 5, 1)]
    )
    sheet.append(["GZ-2", " 越秀驿站 ", "23.13", "113.27", None, "020-1234", "440104", "2024-05-02"])
    sheet.append([None] * 8)  # a blank row 4 in the middle
    sheet.append(["GZ-3", "海珠驿站", 95, 113.3, None, None, None, None])
    workbook.create_sheet("说明").append(["this sheet is ignored"])
    path = tmp_path / "stations.xlsx"
    workbook.save(path)

    result = parse_station_file(path)
    shanghai = ZoneInfo("Asia/Shanghai")
    assert [(r.code, r.name, r.lat, r.lon, r.phone, r.region, r.verified_at) for r in result.records] == [
        (
            "1001",
            "天河驿站",
            23.1291,
            113.2644,
            "13800138000",
            "440106",
            datetime(2024, 5, 1, tzinfo=shanghai),
        ),
        ("GZ-2", "越秀驿站", 23.13, 113.27, "020-1234", "440104", datetime(2024, 5, 2, tzinfo=shanghai)),
    ]
    assert result.records[0].amenities == ("drinking_water", "toilet")
    error = only_error(result)
    assert error.row == 5  # Excel's own row number: header 1, data 2 and 3, blank 4
    assert str(error).startswith("row 5: latitude 95 is out of range")


def test_xlsx_header_not_on_the_first_row_keeps_excel_row_numbers(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A3"], sheet["B3"], sheet["C3"] = "name", "lat", "lon"
    sheet["A4"], sheet["B4"], sheet["C4"] = "站一", "abc", 116.4
    path = tmp_path / "stations.xlsx"
    workbook.save(path)
    assert str(only_error(parse_station_file(path))) == "row 4: lat 'abc' is not a number"


# ------------------------------------------------------------------------------------------- GeoJSON


def geojson_text(features: list[dict[str, object]]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def point(lon: object, lat: object, **properties: object) -> dict[str, object]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def test_geojson_points_with_chinese_properties(tmp_path: Path) -> None:
    features = [
        point(113.2644, 23.1291, 站点编号="GZ-1", 站点名称="天河驿站", 服务设施=["饮水", "toilet"], 备注="x"),
        point(113.27, 23.13, code=17, name="越秀驿站", amenities="热饭;饮水", status="暂停"),
    ]
    result = parse_station_file(write_file(tmp_path, geojson_text(features), name="s.geojson"))
    assert result.errors == []
    assert result.records == [
        StationRecord(
            code="GZ-1", name="天河驿站", lat=23.1291, lon=113.2644, amenities=("drinking_water", "toilet")
        ),
        StationRecord(
            code="17",
            name="越秀驿站",
            lat=23.13,
            lon=113.27,
            amenities=("drinking_water", "food_heating"),
            status=StationStatus.TEMPORARILY_CLOSED,
        ),
    ]
    assert result.warnings == ["ignored properties not recognised: 备注"]


def test_geojson_errors_name_the_feature_number(tmp_path: Path) -> None:
    features: list[dict[str, object]] = [
        point(113.2644, 23.1291, name="天河驿站"),
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": []},
            "properties": {"name": "x"},
        },
        point(113.27, 95, name="越秀驿站"),
        point(113.28, 23.12, name="海珠驿站", code=None, amenities=["电视"]),
    ]
    result = parse_station_file(write_file(tmp_path, geojson_text(features), name="s.json"))
    assert [r.name for r in result.records] == ["天河驿站"]
    assert [str(e) for e in result.errors] == [
        "feature 2: the geometry must be a Point (found LineString)",
        "feature 3: latitude 95 is out of range (must be between -90 and 90)",
        f"feature 4: {UNKNOWN_TV}",
    ]
    assert result.total_rows == 4


def test_geojson_coordinates_follow_the_crs_parameter(tmp_path: Path) -> None:
    truth = (23.1291, 113.2644)
    gcj = wgs84_to_gcj02(*truth)
    path = write_file(tmp_path, geojson_text([point(gcj[1], gcj[0], name="天河驿站")]), name="s.geojson")
    record = parse_station_file(path, crs=CRS.GCJ02).records[0]
    assert geodesic((record.lat, record.lon), truth).m < 0.05


# ---------------------------------------------------------------------------------- generated codes


def test_rows_without_code_get_a_deterministic_code_from_name_and_position(tmp_path: Path) -> None:
    text = "name,lat,lon\n天河驿站,23.1291,113.2644\n越秀驿站,23.13,113.27\n"
    first = parse_csv(tmp_path, text).records
    second = parse_csv(tmp_path, text).records
    assert [r.code for r in first] == [r.code for r in second]
    digest = hashlib.sha1("天河驿站|23.12910|113.26440".encode()).hexdigest()
    assert first[0].code == "X" + digest[:10].upper()
    assert first[0].code != first[1].code


def test_generated_code_is_derived_from_wgs84_so_any_crs_gives_the_same_station(tmp_path: Path) -> None:
    truth = (23.1291, 113.2644)
    gcj = wgs84_to_gcj02(*truth)
    wgs_code = parse_csv(tmp_path, f"name,lat,lon\n天河驿站,{truth[0]},{truth[1]}\n").records[0].code
    gcj_code = (
        parse_csv(tmp_path, f"name,lat,lon\n天河驿站,{gcj[0]:.9f},{gcj[1]:.9f}\n", crs="gcj02")
        .records[0]
        .code
    )
    assert gcj_code == wgs_code


# -------------------------------------------------------------------------------------------- datums


@pytest.mark.parametrize(("crs", "forward"), [(CRS.GCJ02, wgs84_to_gcj02), (CRS.BD09, wgs84_to_bd09)])
def test_chinese_datum_imports_land_within_half_a_metre_of_the_truth(
    tmp_path: Path, crs: CRS, forward: object
) -> None:
    lines = ["name,lat,lon"]
    for i, truth in enumerate(CHINA_POINTS):
        lat, lon = forward(*truth)  # type: ignore[operator]
        lines.append(f"站{i},{lat:.7f},{lon:.7f}")  # 7 decimals, as map exports give them
    result = parse_csv(tmp_path, "\n".join(lines) + "\n", crs=crs)
    assert result.errors == []
    for record, truth in zip(result.records, CHINA_POINTS, strict=True):
        assert geodesic((record.lat, record.lon), truth).m < 0.5, record.name


# ------------------------------------------------------------------------------------ export / import


ROUND_TRIP_RECORDS = [
    StationRecord(
        code="GD-440106-0001",
        name="天河区“暖心”驿站, 二楼",
        lat=23.1291234,
        lon=113.2644567,
        address='广州市天河区"体育西路"1号\n(近地铁站)',
        region="440106",
        host="中国移动",
        opening_hours='Mo-Fr 08:00-20:00; Sa,Su 09:00-17:00; PH off "节假日休息"',
        amenities=("drinking_water", "food_heating", "ebike_charging", "sewing"),
        phone="020-12345678",
        manager="王师傅",
        status=StationStatus.TEMPORARILY_CLOSED,
        timezone="Asia/Shanghai",
        verified_at=datetime(2024, 12, 31, 17, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
    ),
    StationRecord(code="XJ-1", name="喀什驿站", lat=39.4704, lon=75.9898, timezone="Asia/Urumqi"),
    StationRecord(
        code="0001", name="Closed one", lat=-0.0000001, lon=-179.9999999, status=StationStatus.CLOSED
    ),
    StationRecord(code="X1", name="24h", lat=52.97, lon=122.54, opening_hours="24/7", amenities=AMENITY_KEYS),
]


def test_write_csv_is_excel_friendly(tmp_path: Path) -> None:
    out = io.StringIO()
    write_csv(ROUND_TRIP_RECORDS[1:2], out)
    assert out.getvalue() == (
        "\ufeffcode,name,address,lat,lon,opening_hours,amenities,phone,manager,host,region,status,timezone,"
        "verified_at,opening_hours_text\r\nXJ-1,喀什驿站,,39.4704000,75.9898000,,,,,,,active,Asia/Urumqi,,\r\n"
    )


def test_csv_export_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        write_csv(ROUND_TRIP_RECORDS, out)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfcode,name,")
    result = parse_station_file(path)
    assert result.errors == [] and result.warnings == []
    assert result.records == ROUND_TRIP_RECORDS


def test_geojson_export_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "export.geojson"
    with path.open("w", encoding="utf-8") as out:
        write_geojson(ROUND_TRIP_RECORDS, out)
    document = json.loads(path.read_text(encoding="utf-8"))
    first = document["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [113.2644567, 23.1291234]}
    assert first["properties"]["amenities"] == ["drinking_water", "food_heating", "ebike_charging", "sewing"]
    result = parse_station_file(path)
    assert result.errors == [] and result.warnings == []
    assert result.records == ROUND_TRIP_RECORDS


_names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stations=st.lists(
        st.tuples(
            _names,
            st.floats(-90, 90).map(lambda v: round(v, 7)),
            st.floats(-180, 180).map(lambda v: round(v, 7)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_seven_decimal_coordinates_round_trip_exactly(
    tmp_path: Path, stations: list[tuple[str, float, float]]
) -> None:
    records = [
        StationRecord(code=f"C{i}", name=n, lat=lat, lon=lon) for i, (n, lat, lon) in enumerate(stations)
    ]
    for fmt, writer in (("csv", write_csv), ("geojson", write_geojson)):
        path = tmp_path / f"export.{fmt}"
        with path.open("w", encoding="utf-8", newline="") as out:
            writer(records, out)
        assert parse_station_file(path).records == records


# ------------------------------------------------------------------------------------------- progress


def test_progress_is_reported_every_five_thousand_rows_and_at_the_end(tmp_path: Path) -> None:
    rows = "".join(f"站{i},{30 + i / 100000:.5f},116.4\n" for i in range(12_000))
    calls: list[tuple[int, int]] = []
    result = parse_csv(
        tmp_path, "name,lat,lon\n" + rows, progress=lambda done, total: calls.append((done, total))
    )
    assert len(result.records) == 12_000
    assert calls == [(5_000, 12_000), (10_000, 12_000), (12_000, 12_000)]


# ------------------------------------------------------------------ hours as Chinese sheets write them


def test_chinese_hours_are_translated_and_kept_as_written(tmp_path: Path) -> None:
    result = parse_csv(
        tmp_path,
        ZH_HEADER + "\n"
        "GZ-1,天河驿站,,23.1291,113.2644,周一至周五 9:00-17:00,,,,,,\n"
        "GZ-2,越秀驿站,,23.13,113.27,全天24小时，节假日休息,,,,,,\n"
        "GZ-3,海珠驿站,,23.12,113.28,Mo-Su 08:00-20:00,,,,,,\n",
    )
    assert result.errors == []
    assert [(r.opening_hours, r.opening_hours_text) for r in result.records] == [
        ("Mo-Fr 09:00-17:00", "周一至周五 9:00-17:00"),
        ("24/7; PH off", "全天24小时，节假日休息"),
        ("Mo-Su 08:00-20:00", ""),
    ]


def test_a_sheet_measured_in_the_field_imports_whole(tmp_path: Path) -> None:
    # The rows that were refused with an English parser message before hours were read as Chinese.
    rows = ["周一至周五 9:00-17:00", "全天24小时", "周一至周五9:00-12:00，14:00-18:00", "上午8:00-下午6:00"]
    text = (
        ZH_HEADER
        + "\n"
        + "".join(f"C{i},驿站{i},,23.1{i},113.2{i},{h!r},,,,,,\n" for i, h in enumerate(rows))
    )
    result = parse_csv(tmp_path, text.replace("'", '"'))
    assert result.errors == [] and len(result.records) == len(rows)


def test_unreadable_chinese_hours_are_refused_in_chinese_with_a_form_that_works(tmp_path: Path) -> None:
    result = parse_csv(
        tmp_path, ZH_HEADER + "\n" + "\n" * 4 + "GZ-1,天河驿站,,23.1291,113.2644,春节期间休息,,,,,,\n"
    )
    error = only_error(result)
    assert result.lang == "zh_Hans"
    assert error.translated(translator("zh_Hans").gettext) == (
        "第 6 行：开放时间 '春节期间休息' 无效：无法识别“春节期间休息”；"
        "请写成“周一至周五 9:00-17:00，周末休息”或“Mo-Fr 09:00-17:00; Sa,Su off”这样的格式"
    )
    assert str(error) == (
        "row 6: opening hours '春节期间休息' are not valid: cannot read “春节期间休息”; "
        "write them like 周一至周五 9:00-17:00，周末休息 or Mo-Fr 09:00-17:00; Sa,Su off"
    )


def test_an_opening_hours_text_column_supplies_the_original_of_osm_hours(tmp_path: Path) -> None:
    result = parse_csv(
        tmp_path,
        "name,lat,lon,opening_hours,opening_hours_text\n"
        "天河驿站,23.1291,113.2644,Mo-Fr 09:00-17:00,周一至周五 9:00-17:00\n"
        "越秀驿站,23.13,113.27,,每天 8:00-20:00\n",
    )
    assert result.errors == []
    assert [(r.opening_hours, r.opening_hours_text) for r in result.records] == [
        ("Mo-Fr 09:00-17:00", "周一至周五 9:00-17:00"),
        ("Mo-Su 08:00-20:00", "每天 8:00-20:00"),
    ]


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_hours_as_written_round_trip_through_an_export(tmp_path: Path, fmt: str) -> None:
    record = StationRecord(
        code="GZ-1",
        name="天河驿站",
        lat=23.1291,
        lon=113.2644,
        opening_hours="Mo-Fr 09:00-12:00,14:00-18:00",
        opening_hours_text="周一至周五9:00-12:00，14:00-18:00",
    )
    path = tmp_path / f"export.{fmt}"
    with path.open("w", encoding="utf-8", newline="") as out:
        (write_csv if fmt == "csv" else write_geojson)([record], out)
    result = parse_station_file(path)
    assert result.errors == [] and result.records == [record]


# ------------------------------------------------------------------------- errors in the sheet's language


def test_the_language_of_a_file_is_the_language_of_its_header(tmp_path: Path) -> None:
    def lang(header: str) -> str:
        return parse_csv(tmp_path, header + "\n").lang

    assert lang("name,lat,lon") == "en"
    assert lang("站点名称,纬度,经度") == "zh_Hans"
    assert lang("站點名稱,緯度,經度") == "zh_Hant"
    assert lang("code,站点名称,lat,lon,备注") == "zh_Hans"  # unrecognised columns do not count


def test_traditional_headers_amenities_and_statuses_are_read(tmp_path: Path) -> None:
    result = parse_csv(
        tmp_path,
        "站點編號,站點名稱,緯度,經度,開放時間,服務設施,聯繫電話,狀態\n"
        "HK-1,灣仔驛站,22.2772,114.1747,週一至週五 9:00-17:00，節假日休息,"
        "飲水、衛生間、手機充電,2345 6789,暫停\n",
    )
    assert result.errors == [] and result.lang == "zh_Hant"
    (record,) = result.records
    assert record.opening_hours == "Mo-Fr 09:00-17:00; PH off"
    assert record.amenities == ("drinking_water", "toilet", "phone_charging")
    assert record.status is StationStatus.TEMPORARILY_CLOSED


def test_every_row_error_reads_in_each_language(tmp_path: Path) -> None:
    result = parse_csv(
        tmp_path,
        ZH_HEADER + "\nA,,,95,113.2,Mo-Fx,电视,,,,,装修中\nA,越秀驿站,,北纬,113.27,,,,,,,\n",
    )
    first, second = result.errors
    zh = translator("zh_Hans").gettext
    hant = translator("zh_Hant").gettext
    en = translator("en").gettext
    assert first.translated(zh).startswith("第 2 行：站点名称（站点名称）为空；纬度 95 超出范围")
    assert "无法识别的服务设施 '电视'" in first.translated(zh)
    assert "无法识别的状态 '装修中'" in first.translated(zh)
    assert second.translated(zh) == "第 3 行：编号 'A' 重复：第 2 行已使用该编号；纬度 '北纬' 不是数字"
    assert (
        second.translated(hant) == "第 3 行：編號 'A' 重複：第 2 行已使用該編號；纬度 '北纬' 不是數字"
    )  # the header as written
    assert [e.translated(en) for e in result.errors] == [str(e) for e in result.errors]


def test_file_errors_read_in_each_language(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError) as caught:
        parse_csv(tmp_path, "站点名称,地址\n天河驿站,x\n")
    assert caught.value.translated(translator("zh_Hans").gettext).startswith(
        "缺少必填列：lat (纬度), lon (经度)"
    )
    assert caught.value.translated(translator("en").gettext) == str(caught.value)
