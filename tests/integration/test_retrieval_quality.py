"""Retrieval quality on twenty real pages of the PostgreSQL 15 manual, with the local model.

CI's share of `make eval-docs` (which ingests the whole manual and also asks the held-out
questions): the development questions answered by these pages, worded the way people
ask, mostly not with the pages' own words. The pages are committed unmodified under
data/pg_manual/ (PostgreSQL Licence, see LICENSE there).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from heron.docsearch.chunking import chunk_document
from heron.docsearch.evaluation import QUESTION_SETS, Question, evaluate, load_questions
from heron.docsearch.ingest import ingest_path
from heron.docsearch.minilm import MAX_TOKENS, MiniLMEmbedder
from heron.docsearch.store import DocStore

PAGES = Path(__file__).parent / "data" / "pg_manual"
DEV = Path(__file__).parents[2] / "benchmarks" / "docs_eval" / QUESTION_SETS["dev"]


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def answered_here(questions: list[Question]) -> list[Question]:
    """The questions some page here answers, their answers narrowed to these pages."""
    here = {path.name for path in PAGES.glob("*.html")}
    narrowed = [Question(q.text, tuple(a for a in q.answers if a.page in here)) for q in questions]
    return [q for q in narrowed if q.answers]


def test_dev_questions_find_their_page_and_section_in_the_top_5(database_url, model):
    store = DocStore(database_url, model)
    totals = ingest_path(store, PAGES)
    assert totals.documents == 20
    questions = answered_here(load_questions(DEV))
    assert len(questions) >= 12
    result = evaluate(store, questions)
    misses = "\n".join(f"{m['question']!r} -> {m['got']}" for m in result.misses)
    assert result.page.recall[5] >= 0.9, misses
    assert result.section.recall[5] >= 0.8, misses
    assert result.page.mrr >= 0.7, misses


def test_every_chunk_of_the_pages_fits_the_model_window(model):
    data = resources.files("heron.docsearch.data").joinpath("minilm-tokenizer.json")
    tokenizer = Tokenizer.from_str(data.read_text(encoding="utf-8"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    size = DocStore("", model).chunk_size
    chunks = [
        chunk
        for page in sorted(PAGES.glob("*.html"))
        for chunk in chunk_document(str(page), page.read_text(encoding="utf-8"), size=size)
    ]
    assert len(chunks) > 200
    tokens = [len(e.ids) for e in tokenizer.encode_batch([c.embedding_text for c in chunks])]
    assert max(tokens) <= MAX_TOKENS
    assert sum(tokens) / len(tokens) > MAX_TOKENS / 2  # the window is used, not wasted
