"""Split documentation into heading-scoped chunks sized for a small embedding model.

Pure: the caller reads the file and passes its text in. A document becomes sections (one
per heading, keeping the path of headings above it); a section longer than `max_chars`
is cut on paragraph boundaries first, then sentences, then words, and consecutive pieces
repeat about `overlap_chars` of whole sentences or words. Each chunk carries a content
hash so that re-ingesting a folder embeds only what changed (`diff_chunks`).
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Literal

from heron.docsearch.parsing import PARSERS, SPACES, Block

__all__ = ["MIN_MAX_CHARS", "Chunk", "DocumentKind", "chunk_document", "diff_chunks", "infer_kind"]

DocumentKind = Literal["markdown", "html", "text"]

MIN_MAX_CHARS = 100
"""The smallest `max_chars` accepted: shorter chunks mean little on their own."""

_KINDS: dict[str, DocumentKind] = {".md": "markdown", ".markdown": "markdown", ".mdx": "markdown"}
_KINDS |= {".html": "html", ".htm": "html"}

_Cut = tuple[int, int]  # a span of text[start:end] dropped between two pieces

_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))\s+(?=[^a-z\s])|\s*\n\s*")
_WORD = re.compile(r"\s+")
_LINE = re.compile(r"\n+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable passage of a document, with what is needed to cite and re-ingest it.

    `text` is whitespace-normalised prose (list items, table rows and quotes keep their own
    lines) and code blocks kept verbatim inside their Markdown fences. `content_hash` is the
    SHA-256 of `heading_path` and `text` only, so it is stable across runs and identical
    for identical passages: scope it by `document` when storing. `anchor` is the URL
    fragment of the nearest heading ("" before the first one), for links.
    """

    document: str
    title: str
    heading_path: tuple[str, ...]
    text: str
    index: int
    content_hash: str
    anchor: str


def infer_kind(path: str) -> DocumentKind:
    """The document kind from a path or URL's extension; anything unknown is plain text."""
    return _KINDS.get(PurePosixPath(_file_name(path)).suffix.lower(), "text")


def chunk_document(
    path: str,
    content: str,
    *,
    kind: DocumentKind | None = None,
    max_chars: int = 1200,
    overlap_chars: int = 200,
) -> list[Chunk]:
    """Cut one document's text into chunks of at most `max_chars` characters, in order.

    `path` is only recorded (and used to infer `kind` and a fallback title); nothing is
    read. A section that fits is one chunk; a heading with no text of its own makes no
    chunk but stays in the heading path of what follows. A single word longer than the
    room left by the overlap is the one thing ever cut mid-word.
    """
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars is {max_chars}; use at least {MIN_MAX_CHARS} (default 1200)")
    if not 0 <= overlap_chars < max_chars:
        raise ValueError(
            f"overlap_chars is {overlap_chars}; use 0 or more and less than max_chars "
            f"({max_chars}), about 15% of it (default 200)"
        )
    parse = PARSERS.get(kind or infer_kind(path))
    if parse is None:
        raise ValueError(f"unknown document kind {kind!r}; use 'markdown', 'html' or 'text'")
    text = content.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    title, sections = parse(text)
    title = title or PurePosixPath(_file_name(path)).stem or path
    chunks: list[Chunk] = []
    for section in sections:
        for piece in _split_section(section.blocks, max_chars, overlap_chars):
            digest = hashlib.sha256(json.dumps([section.path, piece], ensure_ascii=False).encode())
            chunk = Chunk(
                path, title, section.path, piece, len(chunks), digest.hexdigest(), section.anchor
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


# --- Splitting a section into chunks ---------------------------------------------------


def _split_section(blocks: Iterable[Block], max_chars: int, overlap: int) -> list[str]:
    """Pack blocks into chunks; a block too long for one chunk is split into pieces first."""
    # The first piece of a split block leaves room for the overlap carried into it.
    first_limit = max(max_chars - overlap - 2, max_chars // 2)
    units: list[tuple[str, bool, bool]] = []  # (text, is code, continues the unit before)
    for block in blocks:
        if len(block.text) <= max_chars:
            units.append((block.text, block.code, False))
            continue
        split = _split_code if block.code else _split_prose
        pieces = split(block.text, first_limit, max_chars, overlap)
        units.extend((piece, block.code, number > 0) for number, piece in enumerate(pieces))
    chunks: list[str] = []
    current: list[str] = []
    last_was_code = False
    for text, code, continued in units:
        size = sum(len(unit) + 2 for unit in current) + len(text)
        if current and (continued or size > max_chars):
            chunks.append("\n\n".join(current))
            # Pieces of one block already overlap; half a code block out of its fence misleads.
            room = min(overlap, max_chars - len(text) - 2)
            carry = "" if continued or last_was_code else _tail(current[-1], room)
            current = [carry] if carry else []
        current.append(text)
        last_was_code = code
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _split_prose(text: str, first_limit: int, limit: int, overlap: int) -> list[str]:
    cuts = _cut_points(text, _SENTENCE, _WORD, first_limit)
    return _pack(text, cuts, _cuts(_WORD, text), first_limit, limit, overlap)


def _split_code(text: str, first_limit: int, limit: int, overlap: int) -> list[str]:
    """Split a fenced block on line boundaries, each piece fenced again so it reads as code."""
    opening, _, rest = text.partition("\n")
    marker = opening[: len(opening) - len(opening.lstrip(opening[0]))]
    body, _, closing = rest.rpartition("\n")
    wrap = len(opening) + len(closing) + 2
    if first_limit - wrap < limit // 4:  # a long info string: keep the bare fence
        opening, closing, wrap = marker, marker, 2 * len(marker) + 2
    cuts = _cut_points(body, _LINE, SPACES, first_limit - wrap)
    pieces = _pack(body, cuts, _cuts(_LINE, body), first_limit - wrap, limit - wrap, overlap)
    return [f"{opening}\n{piece}\n{closing}" for piece in pieces]


def _pack(
    text: str, cuts: list[_Cut], fallback: list[_Cut], first_limit: int, limit: int, overlap: int
) -> list[str]:
    """Cut `text` greedily at `cuts` into pieces of at most `limit` characters (the first at
    most `first_limit`), each starting with up to `overlap` characters of the one before."""
    pieces: list[str] = []
    start, floor, room = 0, 0, first_limit
    while len(text) - start > room:
        end = _furthest(cuts, max(start, floor), start + room)
        assert end is not None, "every segment between cuts is at most first_limit long"
        pieces.append(text[start : end[0]])
        floor, room = end[0], limit
        for candidate in [*_overlap_starts(end[0], start, overlap, cuts, fallback), end[1]]:
            if len(text) - candidate <= room or _furthest(cuts, floor, candidate + room):
                start = candidate
                break
    pieces.append(text[start:])
    return [piece for piece in pieces if piece.strip()]


def _tail(text: str, limit: int) -> str:
    """The longest end of `text` of at most `limit` characters: whole sentences, else words."""
    if limit <= 0:
        return ""
    sentences = [(0, 0), *_cuts(_SENTENCE, text)]
    starts = _overlap_starts(len(text), -1, limit, sentences, _cuts(_WORD, text))
    return text[starts[0] :] if starts else ""


def _overlap_starts(
    end: int, floor: int, overlap: int, cuts: list[_Cut], fallback: list[_Cut]
) -> list[int]:
    """Where a piece may start to repeat at most `overlap` characters before `end`, best
    first: whole sentences (or lines) giving at least half of it (or all there is), then
    word boundaries."""

    def window(spans: list[_Cut]) -> list[int]:  # spans are sorted and do not overlap
        low = bisect_left(spans, max(floor + 1, end - overlap), key=lambda cut: cut[1])
        return [after for _, after in spans[low : bisect_left(spans, end, key=lambda cut: cut[1])]]

    whole, words = window(cuts), window(fallback)
    earliest = words[0] if words else end
    return [start for start in whole if end - start >= overlap / 2 or start <= earliest] + words


def _furthest(cuts: list[_Cut], after: int, limit: int) -> _Cut | None:
    """The last cut starting after `after` and at or before `limit`, if any."""
    last = bisect_right(cuts, limit, key=lambda cut: cut[0]) - 1
    return cuts[last] if last >= 0 and cuts[last][0] > after else None


def _cuts(pattern: re.Pattern[str], text: str) -> list[_Cut]:
    return [match.span() for match in pattern.finditer(text)]


def _cut_points(
    text: str, coarse: re.Pattern[str], fine: re.Pattern[str], limit: int
) -> list[_Cut]:
    """`coarse` cuts; inside a segment longer than `limit`, `fine` ones; inside a word
    longer than `limit` (the only mid-word cut), every `limit` characters."""
    cuts = _cuts(coarse, text)
    for pattern in (fine, None):
        finer = list(cuts)
        for (_, start), (end, _) in pairwise([(0, 0), *cuts, (len(text), len(text))]):
            if end - start > limit and pattern is not None:
                finer.extend(match.span() for match in pattern.finditer(text, start, end))
            elif end - start > limit:
                finer.extend((cut, cut) for cut in range(start + limit, end, limit))
        cuts = sorted(finer)
    return cuts


def _file_name(path: str) -> str:
    return re.split(r"[\\/]", path.split("#", 1)[0].split("?", 1)[0])[-1]
