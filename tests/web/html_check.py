"""What a browser would make of the server's HTML: its tags, and the targets of its links."""

from __future__ import annotations

from html.parser import HTMLParser


class Rendered(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.links: list[str] = []
        self.text_parts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        self.links += [
            value or "" for name, value in attrs if name in ("href", "src", "action", "formaction")
        ]

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
