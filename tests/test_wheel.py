"""The wheel: built from the sources alone (no compiled catalogue in the tree), it ships every package, the
compiled catalogues and the static files, and the copy installed from it runs without the checkout.

`.ci/wheel-check` goes further in CI: it installs the wheel with its dependencies into a fresh virtual
environment and runs the command line and a bot end-to-end test from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("zh_Hans", "zh_Hant", "en")
NOT_SHIPPED = {"tests", "bench"}

pytestmark = pytest.mark.wheel


@dataclass
class Built:
    wheel: Path
    log: str
    site: Path


def top_level_packages() -> set[str]:
    return {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_SHIPPED and not path.parent.name.startswith(".")
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    # A copy without build products: the build must compile the catalogues itself, and a stale `build/`
    # directory of the checkout must not leak into the wheel.
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            "*.mo",
            "yizhan.db*",
            "tests",
            "bench",
        ),
    )
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp / "dist"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp / "dist").glob("yizhan-*.whl")
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    yield Built(wheel, result.stdout + result.stderr, site)


def run_installed(built: Built, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run the interpreter on the installed copy only: the checkout is neither the cwd nor on the path."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(built.site), "LANG": "C.UTF-8", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_wheel_ships_every_package_and_compiled_catalogues_without_sources(built: Built) -> None:
    names = zipfile.ZipFile(built.wheel).namelist()
    packages = {name.split("/")[0] for name in names if name.endswith("/__init__.py")}
    assert top_level_packages() <= packages, top_level_packages() - packages
    for locale in LOCALES:
        assert f"locales/{locale}/LC_MESSAGES/messages.mo" in names
    assert not [name for name in names if name.endswith((".po", ".pot"))]
    assert "bot/web/static/index.html" in names
    for console_file in ("templates/base.html", "static/console.js", "static/console.css"):
        assert f"bot/web/console/{console_file}" in names
    assert "bot/web/static/vendor/htmx/htmx.min.js" in names
    assert "storage/migrations/env.py" in names
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(built.wheel).read(metadata).decode()
    assert "deprecat" not in built.log.lower(), built.log


def test_installed_copy_translates_and_answers_from_its_own_files(built: Built, tmp_path: Path) -> None:
    with (ROOT / "locales" / "zh_Hant" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        expected = read_po(po)["📍 Share my location"].string
    probe = textwrap.dedent(
        """
        import json, bot, locales
        from bot.i18n import LOCALES_DIR, translator
        from bot.telegram import build_i18n
        i18n = build_i18n()
        print(json.dumps({
            "bot": bot.__file__,
            "locales": str(LOCALES_DIR),
            "available": sorted(i18n.available_locales),
            "aiogram": i18n.gettext("📍 Share my location", locale="zh_Hant"),
            "translator": translator("zh_Hant").gettext("📍 Share my location"),
        }))
        """
    )
    found = json.loads(run_installed(built, "-c", probe, cwd=tmp_path))
    assert Path(found["bot"]).is_relative_to(built.site)
    assert Path(found["locales"]).is_relative_to(built.site)
    assert found["available"] == sorted(LOCALES)
    assert found["aiogram"] == found["translator"] == expected != "📍 Share my location"

    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'wheel.db'}"}
    run_installed(built, "-m", "bot", "stations", "seed", "--count", "300", cwd=tmp_path, env=env)
    nearby = ("nearby", "23.1291", "113.2644", "--include-closed", "--json")
    answer = json.loads(run_installed(built, "-m", "bot", *nearby, cwd=tmp_path, env=env))
    assert len(answer["results"]) == 5
