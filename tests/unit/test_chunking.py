"""The docs chunker: heading paths, sizes, overlap and hashes, on text passed in (no I/O)."""

import dataclasses
import random
import re
import textwrap
from collections.abc import Callable
from itertools import pairwise

import pytest

from heron.docsearch.chunking import Chunk, ChunkSize, chunk_document, diff_chunks, infer_kind


def paths(chunks: list[Chunk]) -> list[tuple[str, ...]]:
    return [chunk.heading_path for chunk in chunks]


def shared(before: str, after: str) -> str:
    """The longest end of `before` that `after` starts with: the overlap between them."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before.endswith(after[:size]):
            return after[:size]
    return ""


def numbered_sentences(count: int, words: int = 7) -> list[str]:
    """Sentences of unique words, so a cut word or a lost one cannot go unnoticed."""
    return [
        " ".join([f"Word{n}x0", *(f"word{n}x{k}" for k in range(1, words))]) + "."
        for n in range(count)
    ]


def without_overlap(chunks: list[Chunk]) -> list[str]:
    """The words of the chunks in order, each overlap counted once."""
    words = chunks[0].text.split()
    for before, after in pairwise(chunks):
        words += after.text[len(shared(before.text, after.text)) :].split()
    return words


# --- kinds and parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("docs/install.md", "markdown"),
        ("docs/GUIDE.Markdown", "markdown"),
        ("site/page.mdx", "markdown"),
        ("manual/sql-vacuum.html", "html"),
        ("https://example.org/docs/page.HTM?lang=en#intro", "html"),
        ("C:\\docs\\setup.md", "markdown"),
        ("notes.txt", "text"),
        ("README", "text"),
        ("archive.md.bak", "text"),
    ],
)
def test_kind_is_inferred_from_the_extension(path, kind):
    assert infer_kind(path) == kind


def test_kind_given_by_the_caller_wins_over_the_extension():
    content = "# Not a heading in a text file\n\nBody."
    assert chunk_document("notes.md", content, kind="text")[0].heading_path == ()
    assert chunk_document("notes.txt", content, kind="markdown")[0].heading_path == (
        "Not a heading in a text file",
    )


@pytest.mark.parametrize(
    ("limit", "overlap", "message"),
    [
        (49, 10, "the chunk limit is 49 characters; use at least 50"),
        (0, 0, "the chunk limit is 0 characters"),
        (500, 500, "the chunk overlap is 500 characters; use 0 or more and less than the limit"),
        (500, 800, "the chunk overlap is 800 characters"),
        (500, -1, "the chunk overlap is -1 characters"),
    ],
)
def test_bad_sizes_are_refused_with_a_clear_message(limit, overlap, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ChunkSize(limit, overlap)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown document kind 'rst'"):
        chunk_document("a.rst", "text", kind="rst")  # type: ignore[arg-type]


# --- Markdown -----------------------------------------------------------------------


def test_markdown_headings_build_the_path():
    chunks = chunk_document(
        "docs/install.md",
        "Preamble.\n\n# Installing\n\nIntro.\n\n## On Debian\n\nUse apt.\n\n"
        "### From source ###\n\nRun make.\n\n## On macOS\n\nUse brew.\n\n# Upgrading\n\nDump.\n",
    )
    assert paths(chunks) == [
        (),
        ("Installing",),
        ("Installing", "On Debian"),
        ("Installing", "On Debian", "From source"),
        ("Installing", "On macOS"),
        ("Upgrading",),
    ]
    assert [chunk.text for chunk in chunks] == [
        "Preamble.",
        "Intro.",
        "Use apt.",
        "Run make.",
        "Use brew.",
        "Dump.",
    ]
    assert [chunk.anchor for chunk in chunks] == [
        "",
        "installing",
        "on-debian",
        "from-source",
        "on-macos",
        "upgrading",
    ]
    assert [chunk.index for chunk in chunks] == list(range(6))
    assert {(chunk.document, chunk.title) for chunk in chunks} == {
        ("docs/install.md", "Installing")
    }


def test_a_heading_without_text_makes_no_chunk_but_stays_in_the_path():
    chunks = chunk_document("a.md", "# Guide\n\n## Server\n\n### Settings\n\nport = 5432\n")
    assert [(chunk.heading_path, chunk.text) for chunk in chunks] == [
        (("Guide", "Server", "Settings"), "port = 5432")
    ]


def test_heading_markup_is_dropped_and_anchors_are_github_slugs():
    chunks = chunk_document(
        "a.md",
        "## The `pg_dump` **tool**: a [guide](x.md)!\n\nA.\n\n## Intro\n\nB.\n\n## Intro\n\nC.\n\n"
        "## Intro\n\nD.\n\n## Set-up {#custom-id}\n\nE.\n\n## Über Größe\n\nF.\n",
    )
    assert chunks[0].heading_path == ("The pg_dump tool: a guide!",)
    assert [chunk.anchor for chunk in chunks] == [
        "the-pg_dump-tool-a-guide",
        "intro",
        "intro-1",
        "intro-2",
        "custom-id",
        "über-größe",
    ]
    assert chunks[4].heading_path == ("Set-up",)


def test_hash_lines_inside_code_fences_are_not_headings():
    content = (
        "# Shell\n\n```bash\n# install the server\napt install postgresql\n## still code\n```\n\n"
        "~~~python\n# a comment\nprint('hi')\n```\nnot the end\n~~~\n\n"
        "````\n```\n# nested fence text\n```\n````\n\nAfter.\n"
    )
    chunks = chunk_document("a.md", content)
    assert paths(chunks) == [("Shell",)]
    assert chunks[0].text == (
        "```bash\n# install the server\napt install postgresql\n## still code\n```\n\n"
        "~~~python\n# a comment\nprint('hi')\n```\nnot the end\n~~~\n\n"
        "````\n```\n# nested fence text\n```\n````\n\nAfter."
    )


def test_an_indented_fence_in_a_list_is_still_code():
    content = "# Steps\n\n1. Run:\n\n   ```\n   # not a heading\n     indented\n   ```\n"
    (chunk,) = chunk_document("a.md", content)
    assert chunk.heading_path == ("Steps",)
    assert chunk.text == "1. Run:\n\n```\n# not a heading\n  indented\n```"


def test_an_unclosed_fence_runs_to_the_end():
    (chunk,) = chunk_document("a.md", "# A\n\n```sql\nSELECT 1;\n# comment\n")
    assert chunk.heading_path == ("A",)
    assert chunk.text == "```sql\nSELECT 1;\n# comment\n```"


def test_front_matter_is_dropped_and_its_title_used():
    content = '---\ntitle: "Backup and Restore"\ntags: [ops]\n---\n# Overview\n\nDump often.\n'
    (chunk,) = chunk_document("docs/backup.md", content)
    assert chunk.title == "Backup and Restore"
    assert chunk.heading_path == ("Overview",)
    assert chunk.text == "Dump often."


def test_title_falls_back_to_the_first_h1_then_the_file_stem():
    no_title = "---\nlayout: page\n---\n## Sub\n\nText.\n\n# First\n\nMore.\n\n# Second\n\nEnd.\n"
    assert {chunk.title for chunk in chunk_document("d/x.md", no_title)} == {"First"}
    assert chunk_document("docs/backup-guide.md", "Text only.")[0].title == "backup-guide"
    assert chunk_document("https://h/docs/faq.html?x=1", "<p>Hi</p>")[0].title == "faq"


def test_setext_headings_and_thematic_breaks():
    content = (
        "Installing\n==========\n\nIntro.\n\nOn Debian\n---------\n\nUse apt.\n\n"
        "---\n\nStill Debian.\n\n- a list item\n---\n\nAfter the break.\n"
    )
    chunks = chunk_document("a.md", content)
    assert [(chunk.heading_path, chunk.text) for chunk in chunks] == [
        (("Installing",), "Intro."),
        (
            ("Installing", "On Debian"),
            "Use apt.\n\nStill Debian.\n\n- a list item\n\nAfter the break.",
        ),
    ]
    assert chunks[0].title == "Installing"


def test_prose_whitespace_is_normalised_but_lists_and_tables_keep_their_lines():
    content = "# A\n\nSome   text\n\twrapped  here.\n\n- one\n- two\n  continued\n\n"
    content += "| a | b |\n| 1 | 2 |\n"
    (chunk,) = chunk_document("a.md", content)
    assert chunk.text == (
        "Some text wrapped here.\n\n- one\n- two continued\n\n| a | b |\n| 1 | 2 |"
    )


def test_crlf_and_byte_order_mark_do_not_matter():
    unix = chunk_document("a.md", "# Title\n\nLine one\nline two.\n")
    windows = chunk_document("a.md", "\ufeff# Title\r\n\r\nLine one\r\nline two.\r\n")
    assert windows == unix


# --- HTML and text ------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>VACUUM &mdash; PostgreSQL</title><style>p { color: red }</style>
<script>document.write("<p>not text</p>")</script></head>
<body>
<header><a href="/">Home</a> Site banner</header>
<nav><ul><li>Chapter list</li></ul></nav>
<div role="navigation">Prev | Next</div>
<h1 id="sql-vacuum">VACUUM</h1>
<p>VACUUM &mdash; garbage-collect and optionally analyze a database &amp; its tables.</p>
<h2><a id="id-1.9.3"></a>Synopsis</h2>
<pre class="synopsis">
VACUUM [ ( <em>option</em> [, ...] ) ] [ <em>table_and_columns</em> ]
    where option can be:
</pre>
<h2>Parameters</h2>
<h3>FULL</h3>
<p>Selects <code>full</code> vacuum, which can reclaim
   more space.</p>
<h3>VERBOSE</h3>
<ul><li>Prints a report.</li><li>Per table.</li></ul>
<h2>Outputs</h2>
<table><tr><th>Column</th><th>Meaning</th></tr><tr><td>pages</td><td>pages removed</td></tr></table>
<footer>Copyright &copy; 2024</footer>
</body></html>
"""


def test_html_headings_build_the_path_and_chrome_is_skipped():
    chunks = chunk_document("manual/sql-vacuum.html", PAGE)
    assert [(chunk.heading_path, chunk.anchor, chunk.text) for chunk in chunks] == [
        (
            ("VACUUM",),
            "sql-vacuum",
            "VACUUM — garbage-collect and optionally analyze a database & its tables.",
        ),
        (
            ("VACUUM", "Synopsis"),
            "id-1.9.3",
            "```\nVACUUM [ ( option [, ...] ) ] [ table_and_columns ]\n"
            "    where option can be:\n```",
        ),
        (
            ("VACUUM", "Parameters", "FULL"),
            "full",
            "Selects full vacuum, which can reclaim more space.",
        ),
        (("VACUUM", "Parameters", "VERBOSE"), "verbose", "Prints a report.\n\nPer table."),
        (("VACUUM", "Outputs"), "outputs", "Column | Meaning\n\npages | pages removed"),
    ]
    assert {chunk.title for chunk in chunks} == {"VACUUM"}
    everything = " ".join(chunk.text for chunk in chunks)
    for chrome in ("not text", "color", "Site banner", "Chapter list", "Prev", "Copyright"):
        assert chrome not in everything


# The shape of a page of the PostgreSQL manual (DocBook XSL): navigation bars and a table
# of contents marked by class, section ids on the enclosing divs, notes with a heading.
DOCBOOK = """<html><head><title>8.1. Numeric Types</title></head><body>
<div class="navheader"><table><tr><th>8.1. Numeric Types</th></tr>
<tr><td><a href="datatype.html">Prev</a></td><td>Up</td></tr></table><hr /></div>
<div class="sect1" id="DATATYPE-NUMERIC"><div class="titlepage"><div><div>
<h2 class="title">8.1. Numeric Types</h2></div></div></div>
<div class="toc"><dl class="toc"><dt><a href="#DATATYPE-INT">8.1.1. Integer Types</a></dt>
</dl></div><a id="id-1.5.7.9.2" class="indexterm"></a><p>Numeric types.</p>
<div class="sect2" id="DATATYPE-INT"><div class="titlepage"><div><div>
<h3 class="title">8.1.1. Integer Types</h3></div></div></div><p>Whole numbers.</p></div>
<div class="sect2" id="DATATYPE-SERIAL"><div class="titlepage"><div><div>
<h3 class="title">8.1.4. Serial Types</h3></div></div></div>
<a id="id-1.5.7.9.9.2" class="indexterm"></a><div class="note"><h3 class="title">Note</h3>
<p>Prefer identity columns.</p></div><p>The serial types are not true types.</p></div>
</div><div class="navfooter"><hr /><table><tr><td>Prev</td><td>Home</td></tr></table></div>
</body></html>"""


def test_docbook_pages_keep_their_sections_and_lose_their_furniture():
    chunks = chunk_document("html/datatype-numeric.html", DOCBOOK)
    assert [(chunk.heading_path, chunk.anchor, chunk.text) for chunk in chunks] == [
        (("8.1. Numeric Types",), "DATATYPE-NUMERIC", "Numeric types."),
        (("8.1. Numeric Types", "8.1.1. Integer Types"), "DATATYPE-INT", "Whole numbers."),
        (
            ("8.1. Numeric Types", "8.1.4. Serial Types"),
            "DATATYPE-SERIAL",
            "Note\n\nPrefer identity columns.\n\nThe serial types are not true types.",
        ),
    ]
    assert chunks[0].title == "8.1. Numeric Types"


def test_html_title_element_is_the_fallback_title():
    page = (
        "<html><head><title> Backup &amp; Restore </title></head><body><p>Dump.</p></body></html>"
    )
    (chunk,) = chunk_document("b.htm", page)
    assert (chunk.title, chunk.heading_path, chunk.text) == ("Backup & Restore", (), "Dump.")


def test_text_files_are_paragraphs_without_headings():
    content = "# not a heading\nsecond line.\n\n\n  Another   paragraph\n\n===\n"
    (chunk,) = chunk_document("notes.txt", content)
    assert chunk.heading_path == ()
    assert chunk.anchor == ""
    assert chunk.text == "# not a heading second line.\n\nAnother paragraph\n\n==="


def test_an_empty_document_has_no_chunks():
    assert chunk_document("a.md", "") == []
    assert chunk_document("a.md", "---\ntitle: x\n---\n# Only a heading\n\n   \n") == []
    assert chunk_document("a.html", "<html><script>x()</script></html>") == []


# --- splitting long sections --------------------------------------------------------


def test_a_section_that_fits_is_one_chunk():
    text = "\n\n".join(numbered_sentences(20, words=5))
    assert len(text) <= 1200
    (chunk,) = chunk_document("a.md", f"# A\n\n{text}\n")
    assert chunk.text == text


def test_a_long_paragraph_is_split_with_sentence_overlap_and_no_word_lost_or_cut():
    sentences = numbered_sentences(60)
    paragraph = " ".join(sentences)
    chunks = chunk_document("a.md", f"# Long\n\n{paragraph}\n", size=ChunkSize(400, 100))
    assert len(chunks) > 5
    assert all(len(chunk.embedding_text) <= 400 for chunk in chunks)
    assert all(chunk.heading_path == ("Long",) for chunk in chunks)
    source_words = paragraph.split()
    assert all(set(chunk.text.split()) <= set(source_words) for chunk in chunks)
    assert without_overlap(chunks) == source_words
    for before, after in pairwise(chunks):
        overlap = shared(before.text, after.text)
        assert 50 <= len(overlap) <= 100
        assert overlap.startswith("Word")  # whole sentences
        assert overlap.endswith(".")
        assert before.text.endswith(".")  # cut at a sentence end, not mid-sentence


def test_a_run_on_sentence_is_split_between_words():
    words = [f"token{n}" for n in range(300)]
    chunks = chunk_document("a.txt", " ".join(words), size=ChunkSize(200, 30))
    assert all(len(chunk.embedding_text) <= 200 for chunk in chunks)
    assert all(set(chunk.text.split()) <= set(words) for chunk in chunks)
    assert without_overlap(chunks) == words
    for before, after in pairwise(chunks):
        overlap = shared(before.text, after.text)
        assert 15 <= len(overlap) <= 30
        assert overlap.split()[0] in words


def test_paragraph_boundaries_come_before_sentence_boundaries():
    sentences = numbered_sentences(36, words=5)
    paragraphs = [" ".join(sentences[3 * n : 3 * n + 3]) for n in range(12)]
    chunks = chunk_document("a.md", "\n\n".join(paragraphs), size=ChunkSize(300, 0))
    assert len(chunks) == 6
    for chunk in chunks:
        assert len(chunk.embedding_text) <= 300
        assert set(chunk.text.split("\n\n")) <= set(paragraphs)


def test_overlap_carries_the_end_of_the_previous_paragraph():
    paragraphs = [" ".join(numbered_sentences(30)[3 * n : 3 * n + 3]) for n in range(10)]
    chunks = chunk_document("a.md", "\n\n".join(paragraphs), size=ChunkSize(400, 80))
    for before, after in pairwise(chunks):
        overlap = shared(before.text, after.text)
        assert 40 <= len(overlap) <= 80
        assert after.text.startswith(overlap + "\n\n")


def test_a_word_longer_than_a_chunk_is_the_only_thing_cut():
    blob = "A" * 450
    chunks = chunk_document(
        "a.txt", f"Short words here. {blob} and after.", size=ChunkSize(200, 30)
    )
    assert all(len(chunk.embedding_text) <= 200 for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks).count("A") >= 450
    assert chunks[0].text.startswith("Short words here.")
    assert chunks[-1].text.endswith("and after.")


def test_a_code_block_that_fits_is_kept_whole():
    code = "```sql\n" + "\n".join(f"SELECT {n} AS value_{n};" for n in range(8)) + "\n```"
    prose = " ".join(numbered_sentences(5, words=4))
    chunks = chunk_document("a.md", f"# Q\n\n{prose}\n\n{code}\n", size=ChunkSize(300, 50))
    assert len(code) <= 300 < len(prose) + len(code)
    (with_code,) = [chunk for chunk in chunks if "SELECT" in chunk.text]
    assert with_code.text.endswith(code)


def test_a_long_code_block_is_split_on_lines_and_fenced_again():
    lines = [f"    SELECT {n}, repeat('x', {n}) FROM series_{n};" for n in range(40)]
    content = "# Script\n\n```sql\n" + "\n".join(lines) + "\n```\n"
    chunks = chunk_document("a.md", content, size=ChunkSize(300, 80))
    assert len(chunks) > 3
    seen: list[str] = []
    for chunk in chunks:
        assert len(chunk.embedding_text) <= 300
        assert chunk.text.startswith("```sql\n")
        assert chunk.text.endswith("\n```")
        body = chunk.text.split("\n")[1:-1]
        assert set(body) <= set(lines)  # whole lines, indentation kept
        seen += [line for line in body if line not in seen]
    assert seen == lines
    for before, after in pairwise(chunks):
        assert before.text.split("\n")[-2] in after.text.split("\n")  # lines overlap


def test_without_a_tokenizer_chunks_are_sized_in_characters():
    paragraph = " ".join(numbered_sentences(80))
    chunks = chunk_document("a.md", paragraph)
    assert all(900 <= len(chunk.embedding_text) <= 1200 for chunk in chunks[:-1])
    assert all(len(chunk.embedding_text) <= 1200 for chunk in chunks)


def words_measure(text: str) -> list[int]:
    """A measure whose unit is the whitespace-separated word."""
    return [match.start() for match in re.finditer(r"\S+", text)]


def test_any_measure_sizes_chunks_and_their_overlap():
    paragraph = " ".join(numbered_sentences(60, words=5))
    size = ChunkSize(60, 12, words_measure, "words")
    chunks = chunk_document("a.md", f"# Long\n\n{paragraph}\n", size=size)
    assert len(chunks) > 5
    assert all(len(chunk.embedding_text.split()) <= 60 for chunk in chunks)
    assert all(len(chunk.embedding_text.split()) >= 45 for chunk in chunks[:-1])  # filled
    assert without_overlap(chunks) == paragraph.split()
    for before, after in pairwise(chunks):
        assert 6 <= len(shared(before.text, after.text).split()) <= 12


def test_the_context_line_counts_and_a_long_one_is_shortened():
    size = ChunkSize(200, 20)
    long_title = " ".join(["Alpha"] * 30)
    chunks = chunk_document("a.md", f"# {long_title}\n\n## B\n\n### C\n\nText here.\n", size=size)
    assert chunks[0].heading_path == (long_title, "B", "C")
    assert chunks[0].context == "C"  # neither the whole path nor title > … > C fit 50
    assert chunks[0].embedding_text == "C\nText here."
    short = chunk_document("a.md", "# T\n\n## B\n\n### C\n\nText.\n", size=size)
    assert short[0].context == "T > B > C"
    middle = chunk_document("a.md", f"# T\n\n## {'B' * 50}\n\n### C\n\nText.\n", size=size)
    assert middle[0].context == "T > \u2026 > C"
    endless = chunk_document("a.md", f"# {' '.join(['Word'] * 40)}\n\nText.\n", size=size)
    assert endless[0].context.endswith("Word\u2026")
    assert len(endless[0].context) <= 50
    sentences = " ".join(numbered_sentences(30))
    for chunk in chunk_document("a.md", f"# {long_title}\n\n{sentences}\n", size=size):
        assert len(chunk.embedding_text) <= 200


def random_markdown(rng: random.Random) -> tuple[str, list[str]]:
    """Headings, wrapped paragraphs, lists and code blocks made of unique words."""
    words: list[str] = []
    lines: list[str] = []
    for section in range(rng.randint(1, 6)):
        lines += ["#" * rng.randint(1, 4) + f" Heading {section}", ""]
        for _ in range(rng.randint(0, 5)):
            fresh = [f"w{len(words) + n}" for n in range(rng.randint(1, 300))]
            words.extend(fresh)
            kind = rng.random()
            if kind < 0.6:
                ends = ["", "", "", ".", "!", "?", ","]
                text = " ".join(word + rng.choice(ends) for word in fresh)
                lines += [*textwrap.wrap(text, rng.randint(20, 120)), ""]
            elif kind < 0.8:
                lines += [f"- {' '.join(fresh[n : n + 9])}" for n in range(0, len(fresh), 9)]
                lines += [""]
            else:
                lines += ["```sql"]
                lines += [
                    " " * rng.randint(0, 6) + " ".join(fresh[n : n + 7])
                    for n in range(0, len(fresh), 7)
                ]
                lines += ["```", ""]
    return "\n".join(lines), words


@pytest.mark.parametrize("seed", range(30))
def test_random_documents_keep_every_word_whole_and_every_chunk_within_the_limit(seed):
    rng = random.Random(seed)
    max_chars = rng.randint(100, 1500)
    overlap_chars = rng.randint(0, max_chars - 1 if seed % 3 == 0 else max_chars // 3)
    content, words = random_markdown(rng)
    chunks = chunk_document("r.md", content, size=ChunkSize(max_chars, overlap_chars))
    assert all(0 < len(chunk.embedding_text) <= max_chars for chunk in chunks)
    assert all(chunk.text == chunk.text.strip() for chunk in chunks)
    found = {word.strip(".!?,") for chunk in chunks for word in chunk.text.split()}
    assert found - {"```sql", "```", "-"} == set(words)


# --- sized for the local model: its tokens, its window ---------------------------------

# Words that WordPiece cuts into several tokens, punctuation, accents, CJK (a token per
# character), and a word longer than WordPiece reads (one [UNK] token).
VOCABULARY = [
    "vacuum",
    "autovacuum_naptime",
    "pg_stat_activity",
    "naïve",
    "Größe",
    "数据库",
    "(SELECT 1)",
    "x=1;y=2",
    "https://www.postgresql.org/docs/15/sql-vacuum.html",
    "e" * 150,
    "antidisestablishmentarianism",
    "3.14159",
    "—",
    "it's",
    "C++",
]


@pytest.fixture(scope="module")
def minilm_size() -> ChunkSize:
    from heron.docsearch.minilm import MiniLMEmbedder
    from heron.docsearch.store import chunk_size_for

    return chunk_size_for(MiniLMEmbedder())


@pytest.fixture(scope="module")
def model_tokens() -> Callable[[str], int]:
    """Counts tokens the way the model reads text, [CLS] and [SEP] included, straight from
    the shipped tokenizer file (independent of the code that sizes chunks)."""
    from importlib import resources

    from tokenizers import Tokenizer

    data = resources.files("heron.docsearch.data").joinpath("minilm-tokenizer.json")
    tokenizer = Tokenizer.from_str(data.read_text(encoding="utf-8"))
    tokenizer.no_truncation()
    tokenizer.no_padding()  # the file pads to 128
    return lambda text: len(tokenizer.encode(text).ids)


def random_technical_markdown(rng: random.Random) -> tuple[str, list[str]]:
    """Like random_markdown, but every word is a unique mix of VOCABULARY, and some
    headings are long."""
    content, words = random_markdown(rng)
    renamed = {word: f"{rng.choice(VOCABULARY)}_{word}" for word in words}
    content = re.sub(r"\bw\d+\b", lambda match: renamed[match[0]], content)
    content = re.sub(
        r"^(#+ Heading \d+)$",
        lambda match: match[1] + " " + " ".join(rng.choices(VOCABULARY, k=rng.randint(0, 40))),
        content,
        flags=re.MULTILINE,
    )
    return content, [renamed[word] for word in words]


@pytest.mark.parametrize("seed", range(15))
def test_every_chunk_fits_the_minilm_window_and_no_word_is_lost(seed, minilm_size, model_tokens):
    assert (minilm_size.limit, minilm_size.unit) == (254, "all-MiniLM-L6-v2-int8 tokens")
    content, words = random_technical_markdown(random.Random(seed))
    chunks = chunk_document("r.md", content, size=minilm_size)
    sizes = [model_tokens(chunk.embedding_text) for chunk in chunks]
    assert max(sizes, default=0) <= 256, "the model would cut off the end of a chunk"
    assert all(chunk.text == chunk.text.strip() for chunk in chunks)
    text = "\n".join(chunk.text for chunk in chunks)
    assert [word for word in words if word not in text] == []


def test_long_sections_fill_the_window_with_overlap(minilm_size, model_tokens):
    paragraph = " ".join(numbered_sentences(120))
    chunks = chunk_document("a.md", f"# Long\n\n{paragraph}\n", size=minilm_size)
    sizes = [model_tokens(chunk.embedding_text) for chunk in chunks]
    assert max(sizes) <= 256
    assert min(sizes[:-1]) >= 200  # filled, not cut at 1,200 characters (about 150 here)
    assert without_overlap(chunks) == paragraph.split()
    for before, after in pairwise(chunks):
        assert 15 <= model_tokens(shared(before.text, after.text)) - 2 <= 42


def test_sizes_in_characters_would_overflow_the_window(model_tokens):
    # Why chunks are sized in tokens: 1,200 characters of such text are over 256 tokens.
    content, _ = random_technical_markdown(random.Random(3))
    sizes = [model_tokens(chunk.embedding_text) for chunk in chunk_document("r.md", content)]
    assert max(sizes) > 256


# --- hashes and incremental re-ingest -------------------------------------------------

DOC = "# Guide\n\nIntro.\n\n## Install\n\nUse apt.\n\n## Upgrade\n\nDump first.\n"


def test_hashes_are_stable_and_depend_on_what_the_model_reads():
    first, again = chunk_document("a.md", DOC), chunk_document("a.md", DOC)
    assert [chunk.content_hash for chunk in first] == [chunk.content_hash for chunk in again]
    # Pinned: changing how hashes are made re-embeds every stored chunk. (Changed once, when
    # the context line became part of the hash and chunks began to be sized in tokens.)
    assert first[1].content_hash == (
        "5eb3b4b7a6e9ad98c57c88bee31c384c369707eaf61e9330e987dae7daeac4ed"
    )
    assert [chunk.embedding_text for chunk in first] == [
        "Guide\nIntro.",
        "Guide > Install\nUse apt.",
        "Guide > Upgrade\nDump first.",
    ]
    assert len({chunk.content_hash for chunk in first}) == 3
    renamed = chunk_document("a.md", DOC.replace("## Install", "## Installing"))
    assert [a.content_hash == b.content_hash for a, b in zip(first, renamed, strict=True)] == [
        True,
        False,
        True,
    ]
    moved = chunk_document("other/place.md", "Preface.\n\n" + DOC)
    assert {chunk.content_hash for chunk in first} < {chunk.content_hash for chunk in moved}
    # The title is in every context line, so a new title re-embeds the whole document.
    retitled = chunk_document("a.md", DOC.replace("# Guide", "# Handbook"))
    assert not {chunk.content_hash for chunk in first} & {c.content_hash for c in retitled}


def test_chunks_are_immutable_values():
    chunk = chunk_document("a.md", DOC)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.text = "changed"  # type: ignore[misc]
    assert chunk == chunk_document("a.md", DOC)[0]


def test_diff_chunks_adds_what_is_new_and_deletes_what_vanished():
    old = chunk_document("a.md", DOC)
    new = chunk_document(
        "a.md",
        DOC.replace("Use apt.", "Use apt or dnf.").replace("## Upgrade\n\nDump first.\n", "")
        + "\n## Remove\n\nPurge.\n",
    )
    added, deleted = diff_chunks({chunk.content_hash for chunk in old}, new)
    assert [chunk.text for chunk in added] == ["Use apt or dnf.", "Purge."]
    assert deleted == {old[1].content_hash, old[2].content_hash}


def test_diff_chunks_on_unchanged_first_and_repeated_content():
    chunks = chunk_document("a.md", DOC)
    hashes = {chunk.content_hash for chunk in chunks}
    assert diff_chunks(set(), chunks) == (chunks, set())
    assert diff_chunks(hashes, chunks) == ([], set())
    assert diff_chunks(hashes, []) == ([], hashes)
    twice = chunk_document("a.md", "# A\n\nSame.\n\n# B\n\nOther.\n\n# A\n\nSame.\n")
    added, _ = diff_chunks(frozenset(), twice)
    assert [chunk.text for chunk in added] == ["Same.", "Other."]


# --- a realistic page -----------------------------------------------------------------

ROUTINE_VACUUMING = """\
---
title: "24.1. Routine Vacuuming"
section: maintenance
---

# Routine Vacuuming

PostgreSQL databases require periodic maintenance known as *vacuuming*. For many
installations it is enough to let the *autovacuum daemon* do it, as described in
[Section 24.1.6](#autovacuum). You might need to adjust its settings for your workload.

## Vacuuming Basics

The `VACUUM` command has to process each table on a regular basis for several reasons:

1. To recover or reuse disk space occupied by updated or deleted rows.
2. To update data statistics used by the query planner.
3. To update the visibility map, which speeds up index-only scans.
4. To protect against loss of very old data due to transaction ID wraparound.

There are two variants of `VACUUM`: standard `VACUUM` and `VACUUM FULL`. `VACUUM FULL` can
reclaim more disk space but runs much more slowly. Also, the standard form can run in
parallel with production database operations, while `VACUUM FULL` takes an exclusive lock.

### Recovering Disk Space

In PostgreSQL, an `UPDATE` or `DELETE` of a row does not immediately remove the old version
of the row. This approach is necessary to gain the benefits of multiversion concurrency
control: the row version must not be deleted while it is still potentially visible to
other transactions. But eventually, an outdated or deleted row version is no longer of
interest to any transaction. The space it occupies must then be reclaimed for reuse by
new rows, to avoid unbounded growth of disk space requirements. This is done by running
`VACUUM`. The standard form removes dead row versions in tables and indexes and marks the
space available for future reuse. However, it will not return the space to the operating
system, except in the special case where one or more pages at the end of a table become
entirely free and an exclusive table lock can be easily obtained.

```sql
-- reclaim space in one table and refresh its statistics
VACUUM (VERBOSE, ANALYZE) measurement;
# psql users: this is a comment line, not a heading
```

### Preventing Transaction ID Wraparound Failures {#vacuum-for-wraparound}

PostgreSQL's MVCC transaction semantics depend on being able to compare transaction ID
numbers. A row version with an insertion XID greater than the current transaction's XID is
in the future and should not be visible to the current transaction. Since transaction IDs
have limited size, a cluster that runs for a long time would suffer wraparound. To avoid
this, every table in every database must be vacuumed at least once every two billion
transactions. Periodic vacuuming solves the problem because `VACUUM` marks rows as frozen.

You can watch how close each database is to the limit:

```
# SELECT datname, age(datfrozenxid) FROM pg_database;
```

## The Autovacuum Daemon {#autovacuum}

PostgreSQL has an optional but highly recommended feature called autovacuum, whose purpose
is to automate the execution of `VACUUM` and `ANALYZE` commands.

| Parameter | Default |
|-----------|---------|
| autovacuum_naptime | 1min |
| autovacuum_vacuum_threshold | 50 |
"""


def test_a_realistic_manual_page():
    chunks = chunk_document("docs/maintenance.md", ROUTINE_VACUUMING, size=ChunkSize(800, 200))
    assert {chunk.title for chunk in chunks} == {"24.1. Routine Vacuuming"}
    assert all(len(chunk.embedding_text) <= 800 for chunk in chunks)
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    sections = list(dict.fromkeys((chunk.heading_path, chunk.anchor) for chunk in chunks))
    assert sections == [
        (("Routine Vacuuming",), "routine-vacuuming"),
        (("Routine Vacuuming", "Vacuuming Basics"), "vacuuming-basics"),
        (
            ("Routine Vacuuming", "Vacuuming Basics", "Recovering Disk Space"),
            "recovering-disk-space",
        ),
        (
            (
                "Routine Vacuuming",
                "Vacuuming Basics",
                "Preventing Transaction ID Wraparound Failures",
            ),
            "vacuum-for-wraparound",
        ),
        (("Routine Vacuuming", "The Autovacuum Daemon"), "autovacuum"),
    ]
    recovering = [chunk for chunk in chunks if chunk.anchor == "recovering-disk-space"]
    assert len(recovering) == 2  # the long paragraph alone is over 800 characters
    assert recovering[1].text.endswith(
        "```sql\n-- reclaim space in one table and refresh its statistics\n"
        "VACUUM (VERBOSE, ANALYZE) measurement;\n"
        "# psql users: this is a comment line, not a heading\n```"
    )
    assert shared(recovering[0].text, recovering[1].text)  # consecutive pieces overlap
    basics = next(chunk for chunk in chunks if chunk.anchor == "vacuuming-basics")
    assert "1. To recover or reuse disk space occupied by updated or deleted rows.\n2. To" in (
        basics.text
    )
    daemon = chunks[-1]
    assert daemon.text.endswith(
        "| autovacuum_naptime | 1min |\n| autovacuum_vacuum_threshold | 50 |"
    )
    assert "section: maintenance" not in " ".join(chunk.text for chunk in chunks)
    with_defaults = chunk_document("docs/maintenance.md", ROUTINE_VACUUMING)
    assert len(with_defaults) == len(sections)  # every section fits in 1,200 characters
