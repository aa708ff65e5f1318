"""The import template (`yizhan stations template`): what a clerk gets, and that it imports untouched."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from bot.cli import main
from bot.i18n import LOCALES, translator
from storage.importers import column_for_header, parse_station_file
from storage.template import TEMPLATE_COLUMNS, TEMPLATE_FORMATS, template_header, template_notes


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'yizhan.db'}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize("fmt", TEMPLATE_FORMATS)
@pytest.mark.parametrize("lang", LOCALES)
def test_the_untouched_template_imports_its_two_examples(
    database: Path, capsys: pytest.CaptureFixture[str], lang: str, fmt: str
) -> None:
    path = database / f"template.{fmt}"
    assert main(["stations", "template", "--lang", lang, "--format", fmt, "--output", str(path)]) == 0
    parsed = parse_station_file(path)
    assert (len(parsed.records), parsed.errors, parsed.warnings, parsed.lang) == (2, [], [], lang)
    first = parsed.records[0]
    assert first.opening_hours == "Mo-Su 08:00-20:00"
    assert first.amenities == ("drinking_water", "food_heating", "toilet", "phone_charging")
    assert (first.code, first.phone, first.region) == ("GD-440106-0001", "020-12345678", "440106")
    capsys.readouterr()
    assert main(["stations", "import", str(path)]) == 0
    assert capsys.readouterr().out.startswith(
        translator(lang)
        .gettext(
            "{total} rows: {inserted} new, {updated} updated, {unchanged} unchanged, {rejected} rejected"
        )
        .format(total=2, inserted=2, updated=0, unchanged=0, rejected=0)
    )


@pytest.mark.parametrize("lang", LOCALES)
def test_the_header_is_in_the_templates_language_and_names_every_column(lang: str) -> None:
    header = template_header(lang)
    assert [column_for_header(h) for h in header] == list(TEMPLATE_COLUMNS)
    if lang == "zh_Hant":
        assert header[:5] == ["站點編號", "站點名稱", "地址", "緯度", "經度"]


@pytest.mark.parametrize("lang", LOCALES)
def test_the_notes_explain_every_column_in_the_language(lang: str) -> None:
    gettext = translator(lang).gettext
    notes = template_notes(lang, gettext)
    by_column = {note.column: note for note in notes if note.column}
    assert list(by_column) == template_header(lang)
    assert [n.column for n in notes if n.required] == [template_header(lang)[i] for i in (1, 3, 4)]
    hours = by_column[template_header(lang)[5]].text
    assert "周一至周五 9:00-17:00，周末休息" in hours and "Mo-Fr 09:00-17:00; Sa,Su off" in hours
    amenities = by_column[template_header(lang)[6]].text
    assert {"en": "ebike_charging", "zh_Hans": "电动车充电", "zh_Hant": "電動車充電"}[lang] in amenities
    general = " ".join(n.text for n in notes if not n.column)
    assert "--crs gcj02" in general and "--crs bd09" in general
    if lang != "en":
        assert "GCJ-02" in general and not any(c.isascii() and c.isalpha() for c in by_column["地址"].text)


def test_the_xlsx_template_keeps_its_notes_on_a_second_sheet(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    assert main(["stations", "template", "--lang", "zh_Hans", "--output", str(path)]) == 0
    workbook = openpyxl.load_workbook(path)
    stations, notes = workbook.worksheets
    assert (stations.title, notes.title) == ("站点", "填写说明")
    assert [c.value for c in stations[1]] == template_header("zh_Hans")
    assert stations.max_row == 3
    assert [row[0] for row in notes.iter_rows(min_row=2, values_only=True) if row[0]] == template_header(
        "zh_Hans"
    )


def test_the_csv_template_keeps_its_notes_as_comment_lines_above_the_header(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    assert main(["stations", "template", "--lang", "zh_Hans", "--format", "csv", "--output", str(path)]) == 0
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    header_at = rows.index(template_header("zh_Hans"))
    assert header_at > len(TEMPLATE_COLUMNS) and all(row[0].startswith("# ") for row in rows[:header_at])
    assert rows[0] == ["# 以 # 开头的行是说明：导入时会跳过，也可以删掉。"]
    assert len(rows) == header_at + 3


def test_comment_lines_count_only_above_the_header(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "# notes, with a comma\n#\nname,lat,lon\n天河驿站,23.13,113.26\n#2,23.14,113.27\n", encoding="utf-8"
    )
    parsed = parse_station_file(path)
    assert [r.name for r in parsed.records] == ["天河驿站", "#2"]  # below the header a # is data
    assert parsed.errors == []
