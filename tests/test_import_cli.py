"""`yizhan stations import` as a clerk runs it: hours in Chinese, and the report in the sheet's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

ZH_SHEET = (
    "站点编号,站点名称,纬度,经度,开放时间\n"
    "GZ-1,天河驿站,23.1291,113.2644,周一至周五 9:00-17:00\n"
    "GZ-2,越秀驿站,23.13,113.27,全天24小时\n"
    "GZ-3,海珠驿站,23.12,113.28,春节期间休息\n"
    "GZ-4,荔湾驿站,95,113.24,\n"
)
EN_SHEET = (
    "code,name,lat,lon,opening_hours\n"
    "GZ-1,Tianhe,23.1291,113.2644,周一至周五 9:00-17:00\n"
    "GZ-2,,23.13,113.27,\n"
)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'yizhan.db'}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")  # the terminal's language must not decide
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def sheet(folder: Path, text: str, name: str = "stations.csv") -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_chinese_sheet_gets_its_report_in_chinese(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stations", "import", sheet(database, ZH_SHEET)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines()[-2:] == [
        "第 4 行：开放时间 '春节期间休息' 无效：无法识别“春节期间休息”；"
        "请写成“周一至周五 9:00-17:00，周末休息”或“Mo-Fr 09:00-17:00; Sa,Su off”这样的格式",
        "第 5 行：纬度 95 超出范围（应在 -90 到 90 之间）",
    ]
    assert out.startswith("共 4 行：新增 2")


def test_an_english_sheet_gets_its_report_in_english(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stations", "import", sheet(database, EN_SHEET)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == "row 3: the station name (name) is empty"
    assert out.startswith("2 rows: 1 new")


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "row 5: latitude 95 is out of range (must be between -90 and 90)"),
        ("zh_Hant", "第 5 行：緯度 95 超出範圍（應在 -90 到 90 之間）"),
    ],
)
def test_lang_overrides_the_language_of_the_sheet(
    database: Path, capsys: pytest.CaptureFixture[str], lang: str, expected: str
) -> None:
    assert main(["stations", "import", sheet(database, ZH_SHEET), "--lang", lang, "--dry-run"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == expected


def test_a_file_error_reads_in_the_chosen_language(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sheet(database, "站点名称,地址\n天河驿站,x\n")
    assert main(["stations", "import", path, "--lang", "zh_Hans"]) == 1
    assert capsys.readouterr().err.startswith("错误：缺少必填列：lat (纬度), lon (经度)")


def test_imported_chinese_hours_are_exported_with_the_text_as_written(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["stations", "import", sheet(database, ZH_SHEET)])
    exported = database / "export.csv"
    assert main(["stations", "export", "--output", str(exported)]) == 0
    lines = exported.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].endswith(",verified_at,opening_hours_text")
    assert any(",Mo-Fr 09:00-17:00," in line and line.endswith(",周一至周五 9:00-17:00") for line in lines)
    # Importing the export changes nothing.
    capsys.readouterr()
    assert main(["stations", "import", str(exported)]) == 0
    assert capsys.readouterr().out.startswith("2 rows: 0 new, 0 updated, 2 unchanged")
