"""Telegram's HTML parse mode, as the real Bot API applies it to `text` and `caption`.

HTML as a bot sends it becomes plain text plus `MessageEntity` dicts (offsets in UTF-16 code units, like
Telegram); what Telegram rejects is rejected (`<br>`, `<div>`, unclosed or crossed tags) with
the same "can't parse entities" wording. The local Bot API server (`localapi/`) parses what bots send
with it, so a bot that would fail in production on the first `<br>` fails its tests too; the console checks
an announcement typed in a browser with it before anything is queued, and renders its preview from the
entities (`bot/web/console/announcements.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

__all__ = ["EntityParseError", "ParsedText", "parse_html", "utf16_len"]

# Tag → entity type; `span` and `tg-emoji` need an attribute check on top.
_ENTITY_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; `str()` is the part after "can't parse entities: "."""


@dataclass(slots=True)
class ParsedText:
    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's offsets and length limits."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(slots=True)
class _Open:
    tag: str
    offset: int
    attrs: dict[str, str | None]
    # `<pre><code class="language-x">` becomes one `pre` entity with a language, not two entities.
    merged_into_pre: bool = False


class _TelegramHtml(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                self.line_starts.append(index + 1)
        self.chunks: list[str] = []
        # not `offset`: HTMLParser keeps its own source position under that name
        self.text_pos = 0
        self.open_tags: list[_Open] = []
        self.entities: list[dict[str, Any]] = []

    def byte_offset(self) -> int:
        line, column = self.getpos()
        return len(self.source[: self.line_starts[line - 1] + column].encode())

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        self.text_pos += utf16_len(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        supported = tag in _ENTITY_TAGS
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            supported = False
        if not supported:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {self.byte_offset()}')
        opened = _Open(tag, self.text_pos, attributes)
        if (
            tag == "code"
            and self.open_tags
            and self.open_tags[-1].tag == "pre"
            and self.open_tags[-1].offset == self.text_pos
        ):
            language = (attributes.get("class") or "").removeprefix("language-")
            if language:
                self.open_tags[-1].attrs["language"] = language
            opened.merged_into_pre = True
        self.open_tags.append(opened)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Telegram has no void elements: `<br/>` is as unsupported as `<br>`.
        raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {self.byte_offset()}')

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags:
            raise EntityParseError(f"Unexpected end tag at byte offset {self.byte_offset()}")
        opened = self.open_tags.pop()
        if opened.tag != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {self.byte_offset()}, expected "</{opened.tag}>", '
                f'found "</{tag}>"'
            )
        length = self.text_pos - opened.offset
        if length == 0 or opened.merged_into_pre:
            return
        entity: dict[str, Any] = {"type": _ENTITY_TAGS[tag], "offset": opened.offset, "length": length}
        if tag == "a":
            href = opened.attrs.get("href")
            if not href:
                return
            entity["url"] = href
        elif tag == "pre" and opened.attrs.get("language"):
            entity["language"] = opened.attrs["language"]
        elif tag == "blockquote" and "expandable" in opened.attrs:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = opened.attrs.get("emoji-id") or ""
        self.entities.append(entity)


def parse_html(source: str) -> ParsedText:
    """Plain text and entities of `source`, or `EntityParseError` where Telegram answers 400."""
    parser = _TelegramHtml(source)
    parser.feed(source)
    parser.close()
    if parser.open_tags:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{parser.open_tags[-1].tag}"')
    # Telegram lists entities by start, an enclosing entity before the ones inside it.
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(parser.chunks), entities)
