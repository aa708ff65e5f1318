"""A Telegram message rendered for a web page: the text escaped, entities as a fixed set of well-nested tags,
links only to safe addresses, whatever the entities."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from bot.services.announcements import rider_message
from bot.web.message_preview import buttons_html, message_html, rider_message_html
from domain.telegram_html import parse_html

ALLOWED = {"b", "i", "u", "s", "span", "code", "pre", "blockquote", "a"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, tag
        for name, value in attrs:
            assert not name.startswith("on"), name
            if name == "href":
                self.hrefs.append(value or "")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert not checker.stack
    return checker


def test_text_is_escaped_and_entities_become_tags() -> None:
    parsed = parse_html("<b>夏季</b> &lt;script&gt;alert(1)&lt;/script&gt; <i>绿豆汤</i>")
    html = message_html(parsed.text, parsed.entities)
    assert html == "<b>夏季</b> &lt;script&gt;alert(1)&lt;/script&gt; <i>绿豆汤</i>"


def test_offsets_count_utf16_units_like_telegram() -> None:
    parsed = parse_html("🔥🔥 <b>热</b>")
    assert parsed.entities == [{"type": "bold", "offset": 5, "length": 1}]
    assert message_html(parsed.text, parsed.entities) == "🔥🔥 <b>热</b>"


def test_overlapping_entities_are_closed_and_reopened() -> None:
    html = message_html(
        "abcdefgh",
        [{"type": "bold", "offset": 0, "length": 5}, {"type": "italic", "offset": 3, "length": 5}],
    )
    assert html == "<b>abc<i>de</i></b><i>fgh</i>"


def test_only_safe_links_are_links() -> None:
    safe = message_html(
        "x", [{"type": "text_link", "offset": 0, "length": 1, "url": "https://a.cn/?q=1&r=2"}]
    )
    assert safe.startswith('<a href="https://a.cn/?q=1&amp;r=2" rel="noopener noreferrer nofollow"')
    for url in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "vbscript:x", ""):
        html = message_html("x", [{"type": "text_link", "offset": 0, "length": 1, "url": url}])
        assert "<a" not in html and "href" not in html, url


def test_buttons_are_inert_and_escaped() -> None:
    html = buttons_html([[("🔕 <退订>", 'unsub"><script>')]])
    assert "<script>" not in html and "&lt;退订&gt;" in html and "<button" not in html


_ENTITY = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["bold", "italic", "text_link", "spoiler", "pre", "mystery", "code"]),
        "offset": st.integers(-3, 40),
        "length": st.integers(-3, 40),
        "url": st.sampled_from(["https://x.cn", "javascript:alert(1)", ""]),
    }
)


@given(st.text(max_size=30), st.lists(_ENTITY, max_size=6))
def test_any_entities_give_well_nested_safe_html_with_the_text_intact(
    text: str, entities: list[dict[str, object]]
) -> None:
    html = message_html(text, entities)
    checker = check(html)
    assert "".join(checker.text) == text
    assert all(href.startswith("https://") for href in checker.hrefs)


def test_a_photo_has_its_place_before_the_caption() -> None:
    message = rider_message("<b>法律援助日</b>", "AgACAgIAAx0", lambda msgid: msgid)
    html = rider_message_html(message)
    assert html.startswith(
        '<div class="tg-message"><div class="tg-photo">🖼</div><div class="tg-text"><b>法律援助日'
    )
    assert "AgACAgIAAx0" not in html  # the file id stays on the server
    assert 'data-callback="unsub">🔕 Unsubscribe<' in html
