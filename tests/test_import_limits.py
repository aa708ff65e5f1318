"""Hostile station files: limits checked before a file is parsed (size, rows, line length, an XLSX's
uncompressed size and compression ratio), formulas in spreadsheets, and formulas smuggled into an export
(CSV injection). Plain files and a SQLite database only."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest

from bot.app import open_core
from bot.config import Settings
from domain.values import StationRecord
from storage.importers import ImportFileError, ImportLimits, parse_station_file, write_csv

HEADER = "code,name,lat,lon"
ROW = "GZ{i:04d},驿站{i},23.13,113.26"


def csv_file(tmp_path: Path, rows: int, extra: str = "", name: str = "s.csv") -> Path:
    path = tmp_path / name
    lines = [HEADER, *(ROW.format(i=i) for i in range(rows))]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def xlsx_file(tmp_path: Path, rows: list[list[object]], name: str = "s.xlsx") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["code", "name", "lat", "lon", "phone"])  # type: ignore[union-attr]
    for row in rows:
        sheet.append(row)  # type: ignore[union-attr]
    path = tmp_path / name
    workbook.save(path)
    return path


def test_the_defaults_take_the_national_network(tmp_path: Path) -> None:
    limits = ImportLimits()
    assert limits.max_rows >= 186_100 * 2
    assert limits.max_bytes >= 100 * 1024 * 1024
    assert len(parse_station_file(csv_file(tmp_path, 3)).records) == 3


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = csv_file(tmp_path, 50)
    size = path.stat().st_size
    with pytest.raises(
        ImportFileError, match=rf"the file has {size:,} bytes; at most 1,000 .*IMPORT_MAX_BYTES"
    ):
        parse_station_file(path, limits=ImportLimits(max_bytes=1_000))


@pytest.mark.parametrize("kind", ["csv", "xlsx", "geojson"])
def test_a_file_with_too_many_rows_is_refused(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        path = csv_file(tmp_path, 11)
    elif kind == "xlsx":
        path = xlsx_file(tmp_path, [[f"GZ{i}", f"驿站{i}", 23.13, 113.26, ""] for i in range(11)])
    else:
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [113.26, 23.13]},
                "properties": {},
            }
        ] * 11
        path = tmp_path / "s.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"more than 10 rows.*IMPORT_MAX_ROWS"):
        parse_station_file(path, limits=ImportLimits(max_rows=10))
    assert parse_station_file(path, limits=ImportLimits(max_rows=11)).total_rows == 11


def test_a_csv_line_over_the_length_limit_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, 3, extra='GZ9,"' + "长" * 2_000 + '",23.13,113.26\n')
    message = r"line 5 has 2,\d{3} characters; at most 1,000 .*IMPORT_MAX_LINE"
    with pytest.raises(ImportFileError, match=message):
        parse_station_file(path, limits=ImportLimits(max_line=1_000))


def zip_with(tmp_path: Path, members: dict[str, bytes], name: str = "bomb.xlsx") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def test_an_xlsx_whose_content_unpacks_too_large_is_refused_before_parsing(tmp_path: Path) -> None:
    path = zip_with(tmp_path, {"xl/worksheets/sheet1.xml": b"<a>" + b"x" * 3_000_000 + b"</a>"})
    with pytest.raises(ImportFileError, match=r"unpacks to 3,000,007 bytes; at most 2,000,000 .*"):
        parse_station_file(path, limits=ImportLimits(max_xlsx_uncompressed=2_000_000))


def test_a_zip_bomb_is_refused_by_its_compression_ratio(tmp_path: Path) -> None:
    path = zip_with(tmp_path, {"xl/worksheets/sheet1.xml": b"\0" * 20_000_000})
    with pytest.raises(ImportFileError, match=r"sheet1.xml is compressed [\d,]+ times.*zip bomb"):
        parse_station_file(path)


def test_an_ordinary_workbook_passes_the_zip_checks(tmp_path: Path) -> None:
    rows = [[f"GZ{i}", "驿站 " * 20, 23.13, 113.26, "020-8888"] for i in range(2_000)]
    assert len(parse_station_file(xlsx_file(tmp_path, rows)).records) == 2_000


def test_formula_cells_are_rejected_naming_the_column(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["GZ1", "天河驿站", 23.13, 113.26, "020-1"],
        ["GZ2", '=HYPERLINK("http://evil.example","点我")', 23.13, 113.26, "020-2"],
        ["GZ3", "海珠驿站", "=23.1+0.01", 113.26, "=1+1"],
    ]
    result = parse_station_file(xlsx_file(tmp_path, rows))
    assert [r.code for r in result.records] == ["GZ1"]
    assert [str(e) for e in result.errors] == [
        "row 3: the cell in column name (B) holds a formula; "
        "paste the value instead (Paste Special → Values)",
        "row 4: the cells in columns lat (C), phone (E) hold formulas; "
        "paste the values instead (Paste Special → Values)",
    ]


DANGEROUS = ["=1+1", "+86 20 8888 6666", "-2+3", "@SUM(A1)", "\t=x", "\r=x"]


def record(i: int, **kw: object) -> StationRecord:
    base: dict[str, object] = dict(code=f"GZ{i:04d}", name=f"驿站{i}", lat=23.13, lon=113.26)
    base.update(kw)
    return StationRecord(**base)  # type: ignore[arg-type]


def test_the_csv_export_neutralises_formulas(tmp_path: Path) -> None:
    out = io.StringIO()
    write_csv([record(i, name=text, phone=text, manager=text) for i, text in enumerate(DANGEROUS)], out)
    import csv

    rows = list(csv.reader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
    header = rows[0]
    for row in rows[1:]:
        for column in ("name", "phone", "manager"):
            cell = row[header.index(column)]
            assert cell.startswith("'") and cell[1] in "=+-@\t\r", (column, cell)
        assert not row[header.index("lat")].startswith("'")


def test_an_export_with_guarded_cells_imports_to_the_same_records(tmp_path: Path) -> None:
    records = [
        record(i, name=f"{text} 驿站", phone=text, manager=text, address=f"'{text}")
        for i, text in enumerate(DANGEROUS)
    ]
    records.append(record(99, name="'quoted' name", address="'", host="'=already guarded?"))
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        write_csv(records, out)
    parsed = parse_station_file(path)
    assert not parsed.errors
    by_code = {r.code: r for r in parsed.records}
    for original in records:
        back = by_code[original.code]
        for name in ("name", "phone", "manager", "address", "host"):
            assert getattr(back, name) == getattr(original, name).strip(), (name, getattr(original, name))


async def test_the_limits_come_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORT_MAX_ROWS", "5")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", _env_file=None)  # type: ignore[call-arg]
    assert settings.import_max_rows == 5
    async with open_core(settings) as core:
        with pytest.raises(ImportFileError, match=r"more than 5 rows"):
            await core.stations.import_file(csv_file(tmp_path, 6))
        assert await core.stations.count() == 0


@pytest.mark.parametrize(
    "text,ok",
    [
        ("name,lat,lon\n" * 10, True),
        ("name,lat,lon", True),  # no final line break
        ("name,lat,lonx", False),
        ("a\n" + "x" * 13 + "\nb", False),
        ("x" * 12 + "\n" + "x" * 12 + "\n" + "x" * 12, True),
        ("x" * 12 + "\n" + "x" * 13, False),
    ],
)
def test_the_line_limit_holds_at_its_boundary(tmp_path: Path, text: str, ok: bool) -> None:
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8")
    try:
        parse_station_file(path, limits=ImportLimits(max_line=12))
        refused = False
    except ImportFileError as error:  # other errors (no usable header) are not the line limit's
        refused = "IMPORT_MAX_LINE" in str(error)
    assert refused is not ok
