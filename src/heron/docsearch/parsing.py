"""Parse Markdown, HTML and plain text into sections: the heading path, an anchor, and
blocks of prose or code. Pure; heron.docsearch.chunking sizes the sections into chunks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

SPACES = re.compile(r"[ \t]+")  # runs of blanks within a line
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_OWN_LINE = re.compile(r"^(?:[-*+][ \t]|\d{1,9}[.)][ \t]|\||>)")  # list items, table rows, quotes
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(\S.*?)[ \t]*$")
_HEADING_ID = re.compile(r"[ \t]*\{#([^\s}]+)[^}]*\}[ \t]*$")  # `## Title {#custom-id}`
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|\*|(?<!\w)__|(?<!\w)_)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph of prose or a fenced code block (kept whole when it fits)."""

    text: str
    code: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """The text under one heading, with the path of headings above it and its anchor."""

    path: tuple[str, ...]
    anchor: str
    blocks: tuple[Block, ...]


class _Outline:
    """Collects sections while tracking the heading path and unique GitHub-style anchors."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.first_h1: str | None = None
        self._stack: list[tuple[int, str]] = []
        self._anchor = ""
        self._blocks: list[Block] = []
        self._anchors: set[str] = set()
        self._repeats: dict[str, int] = {}

    def heading(self, level: int, text: str, anchor: str | None = None) -> None:
        self._close()
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        slug = anchor or _slug(text)
        self._anchor = slug
        while self._anchor in self._anchors:  # GitHub numbers repeats: intro, intro-1, ...
            self._repeats[slug] = self._repeats.get(slug, 0) + 1
            self._anchor = f"{slug}-{self._repeats[slug]}"
        self._anchors.add(self._anchor)

    def block(self, text: str, *, code: bool = False) -> None:
        if text.strip():
            self._blocks.append(Block(text, code))

    def finish(self) -> list[Section]:
        self._close()
        return self.sections

    def _close(self) -> None:
        if self._blocks:
            path = tuple(text for _, text in self._stack)
            self.sections.append(Section(path, self._anchor, tuple(self._blocks)))
            self._blocks = []


def _parse_markdown(text: str) -> tuple[str | None, list[Section]]:
    title, lines = _strip_front_matter(text.split("\n"))
    outline = _Outline()
    paragraph: list[str] = []
    code: list[str] = []
    fence: tuple[str, int] | None = None  # (marker, indent) of the open code fence

    def end_paragraph() -> None:
        outline.block(_prose(paragraph))
        paragraph.clear()

    for line in lines:
        if fence is not None:
            closing = _FENCE.match(line)
            if closing and closing[2].startswith(fence[0]) and not closing[3].strip():
                _code_block(outline, code, fence[0])
                fence = None
            else:  # undo the fence's own indentation (fences nested in list items)
                indent = min(fence[1], len(line) - len(line.lstrip(" ")))
                code.append(line[indent:].rstrip())
            continue
        opening = _FENCE.match(line)
        if opening and not (opening[2][0] == "`" and "`" in opening[3]):
            end_paragraph()
            fence = (opening[2], len(opening[1]))
            code = [line.strip()]
        elif atx := _ATX.match(line):
            end_paragraph()
            _markdown_heading(outline, len(atx[1]), atx[2] or "")
        elif (setext := _SETEXT.match(line)) and paragraph and not _own_line(paragraph[0]):
            _markdown_heading(outline, 1 if setext[1][0] == "=" else 2, " ".join(paragraph))
            paragraph.clear()
        elif not line.strip() or _THEMATIC_BREAK.match(line):
            end_paragraph()
        else:
            paragraph.append(line)
    if fence is not None:  # unclosed: the fence runs to the end, as in CommonMark
        _code_block(outline, code, fence[0])
    end_paragraph()
    return title or outline.first_h1, outline.finish()


def _code_block(outline: _Outline, lines: list[str], marker: str) -> None:
    body = "\n".join(lines[1:]).strip("\n")
    if body.strip():  # an empty fence says nothing
        outline.block(f"{lines[0]}\n{body}\n{marker}", code=True)


def _strip_front_matter(lines: list[str]) -> tuple[str | None, list[str]]:
    if not lines or lines[0].strip() != "---":
        return None, lines
    for end in range(1, len(lines)):
        if lines[end].strip() in {"---", "..."}:
            titles = (_FRONT_MATTER_TITLE.match(line) for line in lines[1:end])
            title = next((match[1].strip("'\"") for match in titles if match), None)
            return title, lines[end + 1 :]
    return None, lines


def _markdown_heading(outline: _Outline, level: int, raw: str) -> None:
    custom = _HEADING_ID.search(raw)
    raw = raw[: custom.start()] if custom else raw
    text = _TAG.sub("", _LINK.sub(r"\1", raw))
    text = " ".join(_EMPHASIS.sub(r"\2", text).replace("`", "").split())
    if text:
        outline.heading(level, text, custom[1] if custom else None)


def _own_line(line: str) -> bool:
    return _OWN_LINE.match(line.lstrip()) is not None


def _prose(lines: Iterable[str]) -> str:
    """Join a paragraph's lines with single spaces; list items and table rows keep a line."""
    joined: list[str] = []
    for raw in lines:
        line = " ".join(raw.split())
        if joined and line and not _OWN_LINE.match(line):
            joined[-1] += " " + line
        elif line:
            joined.append(line)
    return "\n".join(joined)


def _parse_text(text: str) -> tuple[str | None, list[Section]]:
    outline = _Outline()
    for paragraph in re.split(r"\n[ \t]*\n", text):
        outline.block(_prose(paragraph.split("\n")))
    return None, outline.finish()


_SKIP = frozenset({"script", "style", "nav", "header", "footer", "noscript", "template", "svg"})
# Page furniture that generators mark by class: DocBook's navigation bars and tables of
# contents (the PostgreSQL manual), Sphinx's sidebar and heading permalinks.
_SKIP_CLASSES = frozenset(
    {"navheader", "navfooter", "toc", "breadcrumbs", "sphinxsidebar", "related", "headerlink"}
)
# Boxes whose heading is a label ("Note", "Warning"), not a section of the outline.
_ADMONITIONS = frozenset({"note", "tip", "warning", "caution", "important", "admonition"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = re.compile(  # tags that end a paragraph of text (td and th only add a " | ")
    r"address|article|aside|blockquote|body|caption|d[dlt]|details|div|fig(caption|ure)|form"
    r"|hr|li|main|ol|p|section|summary|t(able|body|foot|head|r)|ul"
)


class _HtmlReader(HTMLParser):
    """Collects the readable text of an HTML page into an outline."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.outline = _Outline()
        self.title = ""
        self._skipping: tuple[str, int] | None = None  # (tag, nesting depth) being skipped
        self._admonition: tuple[str, int] | None = None  # (tag, nesting depth) of a note box
        self._in_title = False
        self._heading: tuple[int, str | None] | None = None  # (level, id) while in h1-h6
        # The id of an element opened since the last text, e.g. DocBook's
        # <div class="sect2" id="VACUUM-BASICS"><div class="titlepage"><h3>: the anchor of
        # a heading that has none of its own.
        self._pending_id: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        if self._skipping is not None:
            if tag == self._skipping[0]:
                self._skipping = (tag, self._skipping[1] + 1)
            return
        if tag in _SKIP or attributes.get("role") == "navigation" or classes & _SKIP_CLASSES:
            self._skipping = (tag, 1)
            return
        if self._admonition is not None and tag == self._admonition[0]:
            self._admonition = (tag, self._admonition[1] + 1)
        elif self._admonition is None and classes & _ADMONITIONS:
            self._admonition = (tag, 1)
        if attributes.get("id") and self._heading is None:
            self._pending_id = attributes["id"]
        if tag == "title":
            self._in_title = True
        elif tag in _HEADINGS and self._admonition is not None:
            self._flush()  # the box's label: a paragraph of its own
        elif tag in _HEADINGS:
            self._flush()
            self._heading = (int(tag[1]), attributes.get("id"))
        elif self._heading is not None:
            if tag == "a" and self._heading[1] is None:  # <h2><a id="x"></a>Title</h2>
                self._heading = (self._heading[0], attributes.get("id") or attributes.get("name"))
        elif tag == "pre":
            self._flush()
        elif tag == "br":
            self._buffer.append("\n")
        elif tag in {"td", "th"} and "".join(self._buffer).strip():
            self._buffer.append(" | ")
        elif _BLOCKS.fullmatch(tag):
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if self._skipping is not None:
            if tag == self._skipping[0]:
                depth = self._skipping[1] - 1
                self._skipping = (tag, depth) if depth else None
            return
        if self._admonition is not None and tag == self._admonition[0]:
            depth = self._admonition[1] - 1
            self._admonition = (tag, depth) if depth else None
        if tag == "title":
            self._in_title = False
        elif tag in _HEADINGS and self._heading is not None:
            text = " ".join("".join(self._buffer).split())
            self._buffer.clear()
            if text:
                anchor = self._heading[1] or self._pending_id
                self.outline.heading(self._heading[0], text, anchor)
            self._heading = None
            self._pending_id = None
        elif tag in _HEADINGS:
            self._flush()
        elif tag == "pre":
            self._flush(code=True)
        elif _BLOCKS.fullmatch(tag) and self._heading is None:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skipping is not None:
            return
        if self._in_title:
            self.title += data
        else:
            self._buffer.append(data)
            if self._heading is None and data.strip():
                self._pending_id = None

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self, *, code: bool = False) -> None:
        raw = "".join(self._buffer)
        self._buffer.clear()
        if not code:
            self.outline.block(" ".join(raw.split()))
        elif body := "\n".join(line.rstrip() for line in raw.strip("\n").split("\n")):
            self.outline.block(f"```\n{body}\n```", code=True)


def _parse_html(text: str) -> tuple[str | None, list[Section]]:
    reader = _HtmlReader()
    reader.feed(text)
    reader.close()
    title = reader.outline.first_h1 or " ".join(reader.title.split())
    return title, reader.outline.finish()


PARSERS = {"markdown": _parse_markdown, "html": _parse_html, "text": _parse_text}


def _slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = (c for c in text.lower() if c in "-_ " or unicodedata.category(c)[0] in "LNM")
    return "".join(kept).replace(" ", "-")
