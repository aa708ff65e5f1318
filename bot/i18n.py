"""Locales and catalogues: Simplified Chinese first, then Traditional Chinese and English.

The bot uses aiogram's `I18n` over these catalogues; the command line and the web app use the same ones
through `translator`.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from pathlib import Path

from domain.languages import DEFAULT_LOCALE, LANGUAGES, LOCALES, locale_for

__all__ = [
    "DEFAULT_LOCALE",
    "DOMAIN",
    "LIST_SEPARATORS",
    "LOCALES",
    "LOCALES_DIR",
    "environment_locale",
    "join_list",
    "locale_for",
    "translator",
]

# The `locales` package: in site-packages for a wheel (which the build compiled), the checkout's
# `locales/` for an editable install or a run from the source tree. Always a directory on disk.
LOCALES_DIR = Path(str(files("locales")))
DOMAIN = "messages"

#: How each language lists things (the registry's `list_separator`): “饮水、卫生间”, “Drinking water, Toilet”.
LIST_SEPARATORS: dict[str, str] = {language.locale: language.list_separator for language in LANGUAGES}


def join_list(items: Iterable[str], locale: str) -> str:
    """`items` as one list in `locale`'s way (“饮水、卫生间”, “Drinking water, Toilet”)."""
    return LIST_SEPARATORS.get(locale, LIST_SEPARATORS[DEFAULT_LOCALE]).join(items)


@cache
def translator(locale: str) -> gettext.NullTranslations:
    try:
        return gettext.translation(DOMAIN, LOCALES_DIR, languages=[locale])
    except OSError:
        # Catalogues not compiled (a checkout before `make`): fall back to the source strings.
        return gettext.NullTranslations()


def environment_locale() -> str:
    """The locale of a terminal user, from LANGUAGE/LC_ALL/LC_MESSAGES/LANG; C and POSIX mean English."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            first = value.split(":")[0]
            if first in ("C", "POSIX") or first.startswith("C."):
                return "en"
            return locale_for(first)
    return DEFAULT_LOCALE
