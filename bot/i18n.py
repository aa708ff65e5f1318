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

# The `locales` package: in site-packages for a wheel (which the build compiled), the checkout's
# `locales/` for an editable install or a run from the source tree. Always a directory on disk.
LOCALES_DIR = Path(str(files("locales")))
DOMAIN = "messages"
DEFAULT_LOCALE = "zh_Hans"
LOCALES: tuple[str, ...] = ("zh_Hans", "zh_Hant", "en")

#: How each language lists things: Chinese with the enumeration comma, English with a comma and a space.
LIST_SEPARATORS: dict[str, str] = {"zh_Hans": "、", "zh_Hant": "、", "en": ", "}

_ZH_HANS = {"zh-hans", "zh-cn", "zh-sg", "zh", "zh-my"}
_ZH_HANT = {"zh-hant", "zh-tw", "zh-hk", "zh-mo"}


def locale_for(language_code: str | None) -> str:
    """Map a BCP 47 tag (Telegram's `language_code`, a browser's) or a POSIX locale to one of ours.

    zh-Hans/zh-CN/zh-SG/zh → zh_Hans; zh-Hant/zh-TW/zh-HK/zh-MO → zh_Hant; otherwise the full tag, then
    its language, then the default.
    """
    if not language_code:
        return DEFAULT_LOCALE
    tag = language_code.split(".")[0].split("@")[0].replace("_", "-").lower()
    if tag in _ZH_HANS:
        return "zh_Hans"
    if tag in _ZH_HANT:
        return "zh_Hant"
    parts = tag.split("-")
    if parts[0] == "zh":
        # zh-Hant-TW, zh-Hans-CN, zh-TW-x: the script or region decides.
        if any(p in ("hant", "tw", "hk", "mo") for p in parts[1:]):
            return "zh_Hant"
        return "zh_Hans"
    for candidate in (tag, parts[0]):
        for locale in LOCALES:
            if locale.lower().replace("_", "-") == candidate:
                return locale
    return DEFAULT_LOCALE


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
