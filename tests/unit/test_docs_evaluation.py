"""Scoring retrieval (recall@k, MRR) and the labelled question sets of `make eval-docs`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from heron.docsearch.evaluation import (
    MANUAL,
    QUESTION_SETS,
    Answer,
    Question,
    heading_key,
    load_questions,
    page_name,
    score,
)
from heron.docsearch.parsing import PARSERS
from heron.docsearch.store import SearchHit

QUESTIONS = Path(__file__).parents[2] / "benchmarks" / "docs_eval"


def hit(source: str, *headings: str) -> SearchHit:
    return SearchHit(1, source, "title", headings, "", "text", 0.1)


def test_scores_are_recall_at_each_cutoff_and_mean_reciprocal_rank():
    scores = score([1, 3, None, 7], cutoffs=(1, 5, 10))
    assert scores.questions == 4
    assert scores.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert math.isclose(scores.mrr, (1 + 1 / 3 + 0 + 1 / 7) / 4)
    assert scores.as_dict() == {
        "questions": 4,
        "recall@1": 0.25,
        "recall@5": 0.5,
        "recall@10": 0.75,
        "mrr": 0.369,
    }
    with pytest.raises(ValueError, match="no questions"):
        score([])


def test_answers_name_a_page_and_maybe_a_section():
    assert Answer.parse("indexes-partial.html") == Answer("indexes-partial.html")
    assert Answer.parse("sql-insert.html#ON CONFLICT Clause") == Answer(
        "sql-insert.html", "ON CONFLICT Clause"
    )
    with pytest.raises(ValueError, match="names no page"):
        Answer.parse("#Heading")


@pytest.mark.parametrize(
    ("heading", "key"),
    [
        ("25.1.2. Recovering Disk Space", "recovering disk space"),
        ("F.38.1. FDW Options of postgres_fdw", "fdw options of postgres_fdw"),
        ("Chapter 25. Routine Database  Maintenance Tasks", "routine database maintenance tasks"),
        ("Part III. Server Administration", "server administration"),
        ("ON CONFLICT Clause", "on conflict clause"),
        ("2PC Without a Dot", "2pc without a dot"),
    ],
)
def test_heading_numbers_do_not_matter(heading, key):
    assert heading_key(heading) == key


def test_a_question_is_answered_at_the_first_result_from_an_answer():
    question = Question(
        "reclaim space",
        (Answer("routine-vacuuming.html", "Recovering Disk Space"), Answer("sql-vacuum.html")),
    )
    manual = "/usr/share/doc/postgresql-doc-15/html/"
    hits = [
        hit(manual + "routine-vacuuming.html", "25.1. Routine Vacuuming", "25.1.1. Basics"),
        hit(manual + "sql-vacuum.html", "Description"),
        hit(manual + "routine-vacuuming.html", "25.1. Routine", "25.1.2. Recovering Disk Space"),
    ]
    assert question.rank(hits, section=False) == 1
    assert question.rank(hits, section=True) == 2  # any section of sql-vacuum.html counts
    assert question.rank(hits[:1], section=True) is None
    assert question.rank([], section=False) is None
    assert page_name("https://example.org/docs/sql-vacuum.html?x=1#id") == "sql-vacuum.html"


def test_load_questions_refuses_incomplete_entries(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text('[[questions]]\nquestion = "a"\nanswers = []\n')
    with pytest.raises(ValueError, match="question 1 needs a question and answers"):
        load_questions(path)
    path.write_text("title = 'no questions'\n")
    with pytest.raises(ValueError, match="has no"):
        load_questions(path)


def test_the_question_sets_are_disjoint_and_big_enough():
    dev = load_questions(QUESTIONS / QUESTION_SETS["dev"])
    heldout = load_questions(QUESTIONS / QUESTION_SETS["heldout"])
    assert len(heldout) >= 40
    assert len(dev) >= 40
    assert not {q.text for q in dev} & {q.text for q in heldout}
    assert len({q.text for q in dev + heldout}) == len(dev) + len(heldout)
    pages = {a.page for q in heldout for a in q.answers}
    assert len(pages) >= 100  # a broad range of the manual


@pytest.mark.skipif(not MANUAL.is_dir(), reason="postgresql-doc-15 is not installed")
@pytest.mark.parametrize("name", sorted(QUESTION_SETS))
def test_every_answer_is_a_page_and_section_of_the_manual(name):
    sections: dict[str, set[str]] = {}
    for question in load_questions(QUESTIONS / QUESTION_SETS[name]):
        for answer in question.answers:
            page = MANUAL / answer.page
            assert page.is_file(), f"{question.text!r}: no page {answer.page}"
            if answer.heading is None:
                continue
            if answer.page not in sections:
                _, parsed = PARSERS["html"](page.read_text(encoding="utf-8"))
                sections[answer.page] = {heading_key(h) for s in parsed for h in s.path}
            assert heading_key(answer.heading) in sections[answer.page], (
                f"{question.text!r}: no section {answer.heading!r} in {answer.page}"
            )
