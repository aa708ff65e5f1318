"""A Telegram message as safe HTML for a web page: its plain text and entities (as the Bot API returns them,
or as `domain/telegram_html.py` reads a bot's HTML) and its inline buttons.

Nothing of the source reaches the page as markup: the text is escaped, each entity becomes one tag from a
fixed list, a link keeps only a web, `tg:` or `mailto:` address, and buttons are inert. Entities may overlap
(Telegram allows bold 0–5 with italic 3–8); a tag that must close early is closed and reopened, so the
page's HTML is always well nested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

from bot.services.announcements import RiderMessage
from domain.telegram_html import parse_html

__all__ = ["buttons_html", "message_html", "rider_message_html", "telegram_message_html"]

_TAGS = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "spoiler": ('<span class="tg-spoiler">', "</span>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ('<blockquote class="tg-expandable">', "</blockquote>"),
    "custom_emoji": ('<span class="tg-emoji">', "</span>"),
}
_SCHEMES = ("http", "https", "tg", "mailto")


def _link(url: str) -> tuple[str, str]:
    scheme = urlsplit(url.strip()).scheme.lower() if url else ""
    if scheme not in _SCHEMES:
        return ('<span class="tg-link">', "</span>")
    return (f'<a href="{escape(url.strip())}" rel="noopener noreferrer nofollow" target="_blank">', "</a>")


def _tag(entity: Mapping[str, Any]) -> tuple[str, str]:
    kind = str(entity.get("type", ""))
    if kind == "text_link":
        return _link(str(entity.get("url") or ""))
    return _TAGS.get(kind, ('<span class="tg-entity">', "</span>"))


def message_html(text: str, entities: Sequence[Mapping[str, Any]] = ()) -> str:
    """`text` with its entities (offsets in UTF-16 code units) as escaped, well-nested HTML."""
    units = text.encode("utf-16-le", "surrogatepass")
    size = len(units) // 2

    def whole(offset: int) -> int:
        """The offset itself, or the next one when it would split a character into its two halves."""
        offset = max(0, min(size, offset))
        if (
            0 < offset < size
            and 0xDC00 <= int.from_bytes(units[2 * offset : 2 * offset + 2], "little") <= 0xDFFF
        ):
            return offset + 1
        return offset

    spans: list[tuple[int, int, tuple[str, str]]] = []
    for entity in entities:
        try:
            start = int(entity["offset"])
            end = start + int(entity["length"])
        except (KeyError, TypeError, ValueError):
            continue
        start, end = whole(start), whole(end)
        if start < end:
            spans.append((start, end, _tag(entity)))
    # Outer entities first where several start together, so that they close last.
    spans.sort(key=lambda span: (span[0], -span[1]))
    cuts = sorted({0, size, *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out: list[str] = []
    stack: list[tuple[int, int, tuple[str, str]]] = []
    pending = iter(spans)
    upcoming = next(pending, None)
    for here, after in pairwise(cuts):
        # Close what ends here; anything opened inside it is closed first and reopened after.
        if any(end == here for _, end, _ in stack):
            reopen = []
            while any(end == here for _, end, _ in stack):
                span = stack.pop()
                out.append(span[2][1])
                if span[1] != here:
                    reopen.append(span)
            for span in reversed(reopen):
                out.append(span[2][0])
                stack.append(span)
        while upcoming is not None and upcoming[0] == here:
            out.append(upcoming[2][0])
            stack.append(upcoming)
            upcoming = next(pending, None)
        out.append(escape(units[2 * here : 2 * after].decode("utf-16-le", "surrogatepass")))
    out.extend(span[2][1] for span in reversed(stack))
    return "".join(out)


def buttons_html(rows: Iterable[Iterable[tuple[str, str]]]) -> str:
    """Inline keyboard rows of (label, callback data) as inert buttons, one row per line."""
    lines = []
    for row in rows:
        cells = "".join(
            f'<span class="tg-button" data-callback="{escape(data)}">{escape(label)}</span>'
            for label, data in row
        )
        lines.append(f'<div class="tg-buttons">{cells}</div>')
    return "".join(lines)


def telegram_message_html(
    text: str,
    entities: Sequence[Mapping[str, Any]],
    keyboard: Iterable[Iterable[tuple[str, str]]],
    *,
    photo: bool = False,
    photo_url: str | None = None,
) -> str:
    """A whole message as a chat shows it: its photo (from `photo_url`, or a photo's place where the page
    cannot fetch Telegram's file), the text (or caption) with its entities, then its buttons."""
    if photo and photo_url:
        body = f'<div class="tg-photo"><img src="{escape(photo_url)}" alt="" loading="lazy"></div>'
    else:
        body = '<div class="tg-photo">🖼</div>' if photo else ""
    body += f'<div class="tg-text">{message_html(text, entities)}</div>'
    return f'<div class="tg-message">{body}{buttons_html(keyboard)}</div>'


def rider_message_html(message: RiderMessage, photo_url: str | None = None) -> str:
    """What a rider receives, read the way Telegram reads the HTML the broadcaster sends (its photo from
    `photo_url` when the page can show it)."""
    parsed = parse_html(message.text)
    rows = [[(button.text, button.callback_data) for button in row] for row in message.keyboard]
    return telegram_message_html(
        parsed.text, parsed.entities, rows, photo=bool(message.photo_file_id), photo_url=photo_url
    )
