"""The gettext catalogues: complete, well-formed, faithful to the placeholders and markup, and in step with
the sources (a string added to the code without re-extracting `locales/messages.pot` fails here).

Plain files only: no database, no network.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES_DIR = ROOT / "locales"
POT = LOCALES_DIR / "messages.pot"
LOCALES = ("zh_Hans", "zh_Hant", "en")
SOURCE_DIRS = ("bot", "handlers")
KEYWORDS = {**DEFAULT_KEYWORDS, "_": None, "gettext": None, "__": None, "lazy_gettext": None, "N_": None}

PLACEHOLDER = re.compile(r"\{[^{}]*\}")
HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


def read_catalogue(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale, abort_invalid=True)


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"


def texts(value: str | tuple[str, ...] | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def messages(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


def placeholders(value: str | tuple[str, ...] | list[str]) -> set[str]:
    return {p for text in texts(value) for p in PLACEHOLDER.findall(text)}


def tags(text: str) -> Counter[str]:
    return Counter(HTML_TAG.findall(text))


def symbols(text: str) -> Counter[str]:
    """Emoji, arrows and other pictographs (Unicode category So): icons must survive translation."""
    return Counter(c for c in text if unicodedata.category(c) == "So")


def balanced(text: str) -> bool:
    stack: list[str] = []
    for tag in HTML_TAG.findall(text):
        name = re.match(r"</?([a-zA-Z0-9]+)", tag)
        assert name is not None
        if tag.startswith("</"):
            if not stack or stack.pop() != name.group(1):
                return False
        elif not tag.endswith("/>"):
            stack.append(name.group(1))
    return not stack


@pytest.fixture(scope="module")
def template() -> Catalog:
    return read_catalogue(POT)


@pytest.fixture(scope="module", params=LOCALES)
def catalogue(request: pytest.FixtureRequest) -> Catalog:
    path = po_path(request.param)
    assert path.is_file(), f"missing catalogue {path}"
    return read_catalogue(path, locale=request.param)


def test_template_is_not_empty(template: Catalog) -> None:
    assert len(messages(template)) > 0


def test_every_template_message_is_present(template: Catalog, catalogue: Catalog) -> None:
    missing = sorted(str(m.id) for m in messages(template) if catalogue.get(m.id, m.context) is None)
    assert not missing, f"{catalogue.locale}: not in the catalogue (run pybabel update): {missing}"


def test_no_empty_translation(catalogue: Catalog) -> None:
    empty = [str(m.id) for m in messages(catalogue) if not all(t.strip() for t in texts(m.string or ""))]
    assert not empty, f"{catalogue.locale}: untranslated: {empty}"


def test_nothing_is_fuzzy(catalogue: Catalog) -> None:
    assert not catalogue.fuzzy, f"{catalogue.locale}: the header is fuzzy"
    fuzzy = [str(m.id) for m in messages(catalogue) if m.fuzzy]
    assert not fuzzy, f"{catalogue.locale}: fuzzy: {fuzzy}"


def test_plural_forms(catalogue: Catalog) -> None:
    assert catalogue.plural_forms.startswith(f"nplurals={catalogue.num_plurals};")
    if str(catalogue.locale).startswith("zh"):
        assert catalogue.num_plurals == 1
        assert catalogue.plural_expr == "0"


def test_placeholders_are_kept(catalogue: Catalog) -> None:
    wrong = {
        str(m.id): (sorted(placeholders(m.id)), sorted(placeholders(m.string)))
        for m in messages(catalogue)
        if placeholders(m.id) != placeholders(m.string)
    }
    assert not wrong, f"{catalogue.locale}: placeholders differ (msgid, msgstr): {wrong}"


def test_html_tags_are_kept(catalogue: Catalog) -> None:
    for m in messages(catalogue):
        source = texts(m.id)[0]
        for text in texts(m.string):
            assert tags(text) == tags(source), f"{catalogue.locale}: tags differ in {m.id!r}: {text!r}"
            assert balanced(text), f"{catalogue.locale}: unbalanced tags in {text!r}"


def test_icons_and_line_breaks_are_kept(catalogue: Catalog) -> None:
    for m in messages(catalogue):
        source = texts(m.id)[0]
        for text in texts(m.string):
            assert symbols(text) == symbols(source), f"{catalogue.locale}: icons differ in {m.id!r}: {text!r}"
            assert text.count("\n") == source.count("\n"), f"{catalogue.locale}: line breaks in {m.id!r}"


def test_compiles(catalogue: Catalog) -> None:
    buffer = BytesIO()
    write_mo(buffer, catalogue)
    assert buffer.getvalue()


def test_template_is_up_to_date_with_the_sources(template: Catalog) -> None:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    patterns = [pattern for pattern, _method in method_map]
    for directory in SOURCE_DIRS:
        assert any(p.startswith(directory + "/") for p in patterns), f"babel.cfg does not cover {directory}/"

    def only_sources(path: str) -> bool:
        relative = Path(os.path.relpath(path, ROOT))
        return relative.parts[0] in SOURCE_DIRS and not relative.name.startswith((".", "_"))

    extracted: dict[str, str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS, directory_filter=only_sources
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid and template.get(msgid, context) is None:
            extracted[msgid] = f"{filename}:{lineno}"
    assert not extracted, f"strings missing from {POT.name} (re-extract with pybabel extract): {extracted}"


def test_extraction_finds_the_sources(template: Catalog) -> None:
    """Guards the guard: extraction must actually see the strings of both directories."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    files = {
        Path(filename).parts[0]
        for filename, _lineno, _message, _comments, _context in extract_from_dir(
            ROOT,
            method_map,
            options_map,
            keywords=KEYWORDS,
            directory_filter=lambda path: Path(os.path.relpath(path, ROOT)).parts[0] in SOURCE_DIRS,
        )
    }
    assert set(SOURCE_DIRS) <= files
    assert template.get("Drinking water") is not None  # a lazy `__(...)` string
