"""The language registry: every language yizhan speaks, in one place.

The catalogues (`locales/<locale>/`), the bot's `/language` keyboard and command menus, the H5 page, the
command line and the demo's chat page all read this table. Adding a language means adding a row here and
its catalogue; `tests/test_registries.py` holds every consumer to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["DEFAULT_LOCALE", "LANGUAGE", "LANGUAGES", "LOCALES", "Language", "locale_for"]


@dataclass(frozen=True, slots=True)
class Language:
    #: The catalogue's directory under `locales/` (`zh_Hans`).
    locale: str
    #: The language's name in itself, for pickers.
    name: str
    #: BCP 47 tag (`zh-Hans`): HTML `lang`, and lower-cased the demo user's Telegram `language_code`.
    tag: str
    #: Language tags (lower case) that mean this language besides its own tag (`zh-tw` → zh_Hant).
    aliases: frozenset[str] = frozenset()
    #: Telegram command menus and descriptions this language fills, keyed by Telegram's two-letter
    #: language code ("" is the default every other language sees).
    menu_codes: tuple[str, ...] = ()
    #: Between the items of a list: Chinese uses the enumeration comma.
    list_separator: str = ", "


LANGUAGES: tuple[Language, ...] = (
    # "zh" serves both scripts in Telegram's menus, and the default menu is Simplified Chinese too.
    Language(
        "zh_Hans", "简体中文", "zh-Hans", frozenset({"zh-cn", "zh-sg", "zh", "zh-my"}), ("", "zh"), "、"
    ),
    Language("zh_Hant", "繁體中文", "zh-Hant", frozenset({"zh-tw", "zh-hk", "zh-mo"}), list_separator="、"),
    Language("en", "English", "en", menu_codes=("en",)),
)
DEFAULT_LOCALE = "zh_Hans"
LOCALES: tuple[str, ...] = tuple(language.locale for language in LANGUAGES)
#: locale → Language.
LANGUAGE: MappingProxyType[str, Language] = MappingProxyType({lang.locale: lang for lang in LANGUAGES})

_BY_TAG: dict[str, str] = {
    tag: language.locale for language in LANGUAGES for tag in (language.tag.lower(), *language.aliases)
}


def locale_for(language_code: str | None) -> str:
    """Map a BCP 47 tag (Telegram's `language_code`, a browser's) or a POSIX locale to one of ours.

    zh-Hans/zh-CN/zh-SG/zh → zh_Hans; zh-Hant/zh-TW/zh-HK/zh-MO → zh_Hant; otherwise the full tag, then
    its language, then the default.
    """
    if not language_code:
        return DEFAULT_LOCALE
    tag = language_code.split(".")[0].split("@")[0].replace("_", "-").lower()
    if tag in _BY_TAG:
        return _BY_TAG[tag]
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
