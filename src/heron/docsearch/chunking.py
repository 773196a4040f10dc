"""Split documentation into heading-scoped chunks sized for the embedding model's window.

Pure: the caller reads the file and passes its text in, and says how to measure text
(`ChunkSize`: the model's own tokens when its tokenizer is at hand, else characters). A
document becomes sections (one per heading, keeping the path of headings above it). What
the model reads for a chunk is a context line (title and heading path) and the chunk's
text; together they stay within `ChunkSize.limit`. A longer section is cut on paragraph
boundaries first, then sentences, then words, and consecutive pieces repeat about
`ChunkSize.overlap` of whole sentences or words. Each chunk carries a content hash of
what is stored and embedded, so that re-ingesting a folder embeds only what changed
(`diff_chunks`).
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Literal

from heron.docsearch.parsing import PARSERS, SPACES, Block

__all__ = [
    "CHARACTERS",
    "MIN_LIMIT",
    "Chunk",
    "ChunkSize",
    "DocumentKind",
    "Measure",
    "characters",
    "chunk_document",
    "context_path",
    "diff_chunks",
    "infer_kind",
]

DocumentKind = Literal["markdown", "html", "text"]

Measure = Callable[[str], Sequence[int]]
"""Where each unit (character, token) of a text starts, in order; its length is the size.

A tokenizer's measure must be additive over whitespace: the tokens of `a + " " + b` are
those of `a` and of `b` (true of WordPiece and BPE tokenizers that split on spaces)."""

MIN_LIMIT = 50
"""The smallest chunk limit accepted, in any unit: shorter chunks mean little on their own."""

_KINDS: dict[str, DocumentKind] = {".md": "markdown", ".markdown": "markdown", ".mdx": "markdown"}
_KINDS |= {".html": "html", ".htm": "html"}

_Cut = tuple[int, int]  # a span of text[start:end] dropped between two pieces

_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))\s+(?=[^a-z\s])|\s*\n\s*")
_WORD = re.compile(r"\s+")
_LINE = re.compile(r"\n+")
_PARAGRAPH = "\n\n"  # between the blocks of a chunk
_ELLIPSIS = "\u2026"


def characters(text: str) -> range:
    """The measure in characters: every character is a unit."""
    return range(len(text))


@dataclass(frozen=True, slots=True)
class ChunkSize:
    """How much text one chunk may give the model, and how text is measured.

    `limit` bounds the context line plus the text of every chunk, in `unit`s as `measure`
    counts them; `overlap` is about how much of the end of a piece the next piece of the
    same section repeats.
    """

    limit: int
    overlap: int
    measure: Measure = characters
    unit: str = "characters"

    def __post_init__(self) -> None:
        if self.limit < MIN_LIMIT:
            raise ValueError(
                f"the chunk limit is {self.limit} {self.unit}; use at least {MIN_LIMIT}"
            )
        if not 0 <= self.overlap < self.limit:
            raise ValueError(
                f"the chunk overlap is {self.overlap} {self.unit}; use 0 or more and less "
                f"than the limit ({self.limit}), about 15% of it"
            )

    def size(self, text: str) -> int:
        """How many units `text` has."""
        return len(self.measure(text))

    def describe(self) -> dict[str, int | str]:
        """The settings, for reports (the measure itself is named by `unit`)."""
        return {"unit": self.unit, "limit": self.limit, "overlap": self.overlap}


CHARACTERS = ChunkSize(1200, 200)
"""For providers without a tokenizer at hand: about 300 tokens of English."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable passage of a document, with what is needed to cite and re-ingest it.

    `text` is whitespace-normalised prose (list items, table rows and quotes keep their own
    lines) and code blocks kept verbatim inside their Markdown fences. `context` is the
    line put before the text for the model (`embedding_text`): the title and heading path,
    shortened when very long. `content_hash` is the SHA-256 of `heading_path`, `context`
    and `text`, so it is stable across runs, identical for identical passages (scope it
    by `document` when storing) and changes whenever what the model reads changes.
    `anchor` is the URL fragment of the nearest heading ("" before the first one).
    """

    document: str
    title: str
    heading_path: tuple[str, ...]
    text: str
    index: int
    content_hash: str
    anchor: str
    context: str

    @property
    def embedding_text(self) -> str:
        """What the model reads: the context line, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text


def infer_kind(path: str) -> DocumentKind:
    """The document kind from a path or URL's extension; anything unknown is plain text."""
    return _KINDS.get(PurePosixPath(_file_name(path)).suffix.lower(), "text")


def context_path(title: str, heading_path: tuple[str, ...]) -> tuple[str, ...]:
    """Title and headings, without repeating a title that is also the first heading."""
    if heading_path and heading_path[0] == title:
        return heading_path
    return (title, *heading_path)


def chunk_document(
    path: str, content: str, *, kind: DocumentKind | None = None, size: ChunkSize = CHARACTERS
) -> list[Chunk]:
    """Cut one document's text into chunks whose embedding text fits `size.limit`, in order.

    `path` is only recorded (and used to infer `kind` and a fallback title); nothing is
    read. A section that fits is one chunk; a heading with no text of its own makes no
    chunk but stays in the heading path of what follows. A single word longer than the
    room left by the overlap is the one thing ever cut mid-word.
    """
    parse = PARSERS.get(kind or infer_kind(path))
    if parse is None:
        raise ValueError(f"unknown document kind {kind!r}; use 'markdown', 'html' or 'text'")
    text = content.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    title, sections = parse(text)
    title = title or PurePosixPath(_file_name(path)).stem or path
    chunks: list[Chunk] = []
    for section in sections:
        context = _context(context_path(title, section.path), size)
        room = size.limit - size.size(f"{context}\n")
        for piece in _split_section(section.blocks, size, room):
            digest = hashlib.sha256(
                json.dumps([section.path, context, piece], ensure_ascii=False).encode()
            )
            chunk = Chunk(
                path,
                title,
                section.path,
                piece,
                len(chunks),
                digest.hexdigest(),
                section.anchor,
                context,
            )
            chunks.append(chunk)
    return chunks


def diff_chunks(old_hashes: AbstractSet[str], new: list[Chunk]) -> tuple[list[Chunk], set[str]]:
    """What re-ingesting a document changes: (chunks to embed and add, hashes to delete).

    `old_hashes` are the stored hashes of the same document. A passage that occurs twice
    is added once. Unchanged chunks are in neither list, even if their `index` moved.
    """
    seen: set[str] = set()
    added: list[Chunk] = []
    for chunk in new:
        if chunk.content_hash not in old_hashes and chunk.content_hash not in seen:
            added.append(chunk)
        seen.add(chunk.content_hash)
    return added, set(old_hashes) - seen


def _context(parts: tuple[str, ...], size: ChunkSize) -> str:
    """The context line, at most a quarter of the limit: the whole path if it fits, else
    the title and the last heading, else the last heading (cut short if need be)."""
    cap = size.limit // 4
    candidates = [" > ".join(parts)]
    if len(parts) > 2:
        candidates.append(f"{parts[0]} > {_ELLIPSIS} > {parts[-1]}")
    candidates.append(parts[-1])
    for candidate in candidates:
        if size.size(candidate) <= cap:
            return candidate
    last = parts[-1]
    end = _Ruler(last, size.measure).reach(0, cap - size.size(_ELLIPSIS))
    space = last.rfind(" ", 0, end + 1)
    return last[: space if space > 0 else end].rstrip() + _ELLIPSIS


class _Ruler:
    """Sizes of the spans of one text, in the units of a measure.

    Exact between unit boundaries (every cut the chunker makes, but for a word longer than
    a chunk); for characters, plain arithmetic on positions.
    """

    __slots__ = ("_end", "_starts")

    def __init__(self, text: str, measure: Measure) -> None:
        self._starts = measure(text)
        self._end = len(text)

    def size(self, start: int = 0, end: int | None = None) -> int:
        """How many units start within text[start:end]."""
        stop = self._end if end is None else end
        return bisect_left(self._starts, stop) - bisect_left(self._starts, start)

    def reach(self, start: int, room: int) -> int:
        """The furthest `end` for which text[start:end] has at most `room` units."""
        index = bisect_left(self._starts, start) + room
        return self._starts[index] if index < len(self._starts) else self._end

    def back(self, end: int, room: int) -> int:
        """The earliest `start` for which text[start:end] has at most `room` units."""
        index = bisect_left(self._starts, end) - room - 1
        return self._starts[index] + 1 if index >= 0 else 0


# --- Splitting a section into chunks ---------------------------------------------------


def _split_section(blocks: Iterable[Block], size: ChunkSize, room: int) -> list[str]:
    """Pack blocks into chunks of at most `room` units; a block too long for one chunk is
    split into pieces first."""
    measure = size.measure
    joiner = size.size(_PARAGRAPH)
    overlap = min(size.overlap, room - 1)
    # The first piece of a split block leaves room for the overlap carried into it.
    first_limit = max(room - overlap - joiner, room // 2)
    units: list[tuple[str, bool, bool, int]] = []  # (text, is code, continues, size)
    for block in blocks:
        ruler = _Ruler(block.text, measure)
        if ruler.size() <= room:
            units.append((block.text, block.code, False, ruler.size()))
            continue
        split = _split_code if block.code else _split_prose
        pieces = split(block.text, ruler, measure, first_limit, room, overlap)
        units.extend(
            (piece, block.code, number > 0, size.size(piece)) for number, piece in enumerate(pieces)
        )
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    last_was_code = False
    for text, code, continued, cost in units:
        total = sum(unit_cost + joiner for _, unit_cost in current) + cost
        if current and (continued or total > room):
            chunks.append(_PARAGRAPH.join(unit for unit, _ in current))
            # Pieces of one block already overlap; half a code block out of its fence misleads.
            tail_room = min(overlap, room - cost - joiner)
            carry = "" if continued or last_was_code else _tail(current[-1][0], tail_room, measure)
            current = [(carry, size.size(carry))] if carry else []
        current.append((text, cost))
        last_was_code = code
    if current:
        chunks.append(_PARAGRAPH.join(unit for unit, _ in current))
    return chunks


def _split_prose(
    text: str, ruler: _Ruler, measure: Measure, first_limit: int, limit: int, overlap: int
) -> list[str]:
    cuts = _cut_points(text, ruler, _SENTENCE, _WORD, first_limit)
    return _pack(text, ruler, cuts, _cuts(_WORD, text), first_limit, limit, overlap)


def _split_code(
    text: str, ruler: _Ruler, measure: Measure, first_limit: int, limit: int, overlap: int
) -> list[str]:
    """Split a fenced block on line boundaries, each piece fenced again so it reads as code."""
    opening, _, rest = text.partition("\n")
    marker = opening[: len(opening) - len(opening.lstrip(opening[0]))]
    body, _, closing = rest.rpartition("\n")
    wrap = len(measure(f"{opening}\n")) + len(measure(f"\n{closing}"))
    if first_limit - wrap < limit // 4:  # a long info string: keep the bare fence
        opening, closing = marker, marker
        wrap = len(measure(f"{marker}\n")) + len(measure(f"\n{marker}"))
    ruler = _Ruler(body, measure)
    cuts = _cut_points(body, ruler, _LINE, SPACES, first_limit - wrap)
    pieces = _pack(body, ruler, cuts, _cuts(_LINE, body), first_limit - wrap, limit - wrap, overlap)
    return [f"{opening}\n{piece}\n{closing}" for piece in pieces]


def _pack(
    text: str,
    ruler: _Ruler,
    cuts: list[_Cut],
    fallback: list[_Cut],
    first_limit: int,
    limit: int,
    overlap: int,
) -> list[str]:
    """Cut `text` greedily at `cuts` into pieces of at most `limit` units (the first at
    most `first_limit`), each starting with up to `overlap` units of the one before."""
    pieces: list[str] = []
    start, floor, room = 0, 0, first_limit
    while ruler.size(start) > room:
        end = _furthest(cuts, max(start, floor), ruler.reach(start, room))
        assert end is not None, "every segment between cuts is at most first_limit long"
        pieces.append(text[start : end[0]])
        floor, room = end[0], limit
        for candidate in [*_overlap_starts(ruler, end[0], start, overlap, cuts, fallback), end[1]]:
            if ruler.size(candidate) <= room or _furthest(
                cuts, floor, ruler.reach(candidate, room)
            ):
                start = candidate
                break
    pieces.append(text[start:])
    return [piece for piece in pieces if piece.strip()]


def _tail(text: str, limit: int, measure: Measure) -> str:
    """The longest end of `text` of at most `limit` units: whole sentences, else words."""
    if limit <= 0:
        return ""
    sentences = [(0, 0), *_cuts(_SENTENCE, text)]
    ruler = _Ruler(text, measure)
    starts = _overlap_starts(ruler, len(text), -1, limit, sentences, _cuts(_WORD, text))
    return text[starts[0] :] if starts else ""


def _overlap_starts(
    ruler: _Ruler, end: int, floor: int, overlap: int, cuts: list[_Cut], fallback: list[_Cut]
) -> list[int]:
    """Where a piece may start to repeat at most `overlap` units before `end`, best first:
    whole sentences (or lines) giving at least half of it (or all there is), then word
    boundaries."""
    lowest = max(floor + 1, ruler.back(end, overlap))

    def window(spans: list[_Cut]) -> list[int]:  # spans are sorted and do not overlap
        low = bisect_left(spans, lowest, key=lambda cut: cut[1])
        return [after for _, after in spans[low : bisect_left(spans, end, key=lambda cut: cut[1])]]

    whole, words = window(cuts), window(fallback)
    earliest = words[0] if words else end
    return [
        start for start in whole if ruler.size(start, end) >= overlap / 2 or start <= earliest
    ] + words


def _furthest(cuts: list[_Cut], after: int, limit: int) -> _Cut | None:
    """The last cut starting after `after` and at or before `limit`, if any."""
    last = bisect_right(cuts, limit, key=lambda cut: cut[0]) - 1
    return cuts[last] if last >= 0 and cuts[last][0] > after else None


def _cuts(pattern: re.Pattern[str], text: str) -> list[_Cut]:
    return [match.span() for match in pattern.finditer(text)]


def _cut_points(
    text: str, ruler: _Ruler, coarse: re.Pattern[str], fine: re.Pattern[str], limit: int
) -> list[_Cut]:
    """`coarse` cuts; inside a segment longer than `limit` units, `fine` ones; inside a
    word longer than `limit` (the only mid-word cut), every `limit` units."""
    cuts = _cuts(coarse, text)
    for pattern in (fine, None):
        finer = list(cuts)
        for (_, start), (end, _) in pairwise([(0, 0), *cuts, (len(text), len(text))]):
            if ruler.size(start, end) <= limit:
                continue
            if pattern is not None:
                finer.extend(match.span() for match in pattern.finditer(text, start, end))
                continue
            position = ruler.reach(start, limit)
            while position < end:
                finer.append((position, position))
                position = ruler.reach(position, limit)
        cuts = sorted(finer)
    return cuts


def _file_name(path: str) -> str:
    return re.split(r"[\\/]", path.split("#", 1)[0].split("?", 1)[0])[-1]
