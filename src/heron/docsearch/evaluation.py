"""Retrieval quality of docs search on labelled questions: recall@k and MRR.

`make eval-docs` ingests the whole PostgreSQL 15 manual (Debian's postgresql-doc-15)
into a database of its own and asks the questions in benchmarks/docs_eval/: a
development set that retrieval was tuned on and a held-out set that only judges it.
A question's answers are pages, optionally narrowed to a section ("page#Heading");
a result counts when it comes from an answer page (page level) or from inside the
answer's section (section level). The scoring is pure; `run_evaluation` does the I/O.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from heron.docsearch.store import DocStore, SearchHit

MANUAL = Path("/usr/share/doc/postgresql-doc-15/html")
QUESTIONS = Path("benchmarks/docs_eval")
QUESTION_SETS = {"dev": "pg15-dev.toml", "heldout": "pg15-heldout.toml"}
EVAL_DATABASE = "heron_eval_docs"
DEPTH = 10  # results asked for per question; recall@k for k up to this
CUTOFFS = (1, 5, 10)
TARGET_RECALL_AT_5 = 0.9

# "25.1.2. ", "F.38.1. ", "Chapter 25. ", "Part III. ", "Appendix F. " before a heading
_NUMBERING = re.compile(
    r"^(?:(?:chapter|part|appendix)\s+)?(?:[a-z]|\d+|[ivxlc]+)(?:\.\d+)*\.\s+", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Answer:
    """A page that answers a question, and optionally the section of it that does."""

    page: str
    heading: str | None = None

    @classmethod
    def parse(cls, text: str) -> Answer:
        """`page.html` or `page.html#Heading` (the heading without its number)."""
        page, _, heading = text.partition("#")
        if not page.strip():
            raise ValueError(f"answer {text!r} names no page")
        return cls(page.strip(), heading.strip() or None)

    def found_in(self, source: str, heading_path: Sequence[str], *, section: bool) -> bool:
        """Whether a result from `source` under `heading_path` gives this answer."""
        if page_name(source) != self.page:
            return False
        if not section or self.heading is None:
            return True
        wanted = heading_key(self.heading)
        return any(heading_key(heading) == wanted for heading in heading_path)


@dataclass(frozen=True, slots=True)
class Question:
    """A question as a user would ask it, with the answers that count."""

    text: str
    answers: tuple[Answer, ...]

    def rank(self, hits: Sequence[SearchHit], *, section: bool) -> int | None:
        """The 1-based position of the first result that answers it, if any."""
        for position, hit in enumerate(hits, start=1):
            if any(a.found_in(hit.source, hit.heading_path, section=section) for a in self.answers):
                return position
        return None


@dataclass(frozen=True, slots=True)
class Scores:
    """Recall at each cutoff and mean reciprocal rank over a question set."""

    questions: int
    recall: dict[int, float]
    mrr: float

    def as_dict(self) -> dict[str, float | int]:
        return (
            {"questions": self.questions}
            | {f"recall@{k}": round(value, 4) for k, value in self.recall.items()}
            | {"mrr": round(self.mrr, 4)}
        )


def score(ranks: Sequence[int | None], cutoffs: Sequence[int] = CUTOFFS) -> Scores:
    """Recall@k (share of questions answered in the first k results) and MRR (mean of
    1/rank of the first answer, 0 when none came back)."""
    if not ranks:
        raise ValueError("no questions to score")
    recall = {k: sum(r is not None and r <= k for r in ranks) / len(ranks) for k in cutoffs}
    mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
    return Scores(len(ranks), recall, mrr)


def page_name(source: str) -> str:
    """The file name of a path or URL (`…/html/sql-vacuum.html` → `sql-vacuum.html`)."""
    return PurePosixPath(source.split("#", 1)[0].split("?", 1)[0].replace("\\", "/")).name


def heading_key(heading: str) -> str:
    """A heading without its section number, spacing and case: for comparing labels."""
    return " ".join(_NUMBERING.sub("", heading.strip()).split()).casefold()


def load_questions(path: Path) -> list[Question]:
    """The `[[questions]]` of a TOML file: `question = "…"`, `answers = ["page#Heading"]`."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    questions = []
    for number, entry in enumerate(data.get("questions", []), start=1):
        text, answers = entry.get("question", "").strip(), entry.get("answers", [])
        if not text or not answers:
            raise ValueError(f"{path}: question {number} needs a question and answers")
        questions.append(Question(text, tuple(Answer.parse(a) for a in answers)))
    if not questions:
        raise ValueError(f"{path} has no [[questions]]")
    return questions


@dataclass(frozen=True, slots=True)
class SetResult:
    """How one question set fared: page- and section-level scores, what was missed."""

    name: str
    page: Scores
    section: Scores
    misses: tuple[dict[str, Any], ...]
    latencies_ms: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "page": self.page.as_dict(),
            "section": self.section.as_dict(),
            "misses_at_5": list(self.misses),
        }


def evaluate(
    store: DocStore, questions: Sequence[Question], *, name: str = "", depth: int = DEPTH
) -> SetResult:
    """Ask every question of the store and score the answers."""
    page_ranks: list[int | None] = []
    section_ranks: list[int | None] = []
    misses: list[dict[str, Any]] = []
    latencies: list[float] = []
    with store.connect() as conn:
        for question in questions:
            start = time.perf_counter()
            hits = store.search(conn, question.text, limit=depth)
            latencies.append((time.perf_counter() - start) * 1000)
            page_rank = question.rank(hits, section=False)
            page_ranks.append(page_rank)
            section_ranks.append(question.rank(hits, section=True))
            if page_rank is None or page_rank > 5:
                misses.append(
                    {
                        "question": question.text,
                        "answers": [
                            a.page + (f"#{a.heading}" if a.heading else "")
                            for a in question.answers
                        ],
                        "rank": page_rank,
                        "got": [
                            f"{page_name(h.source)} > {' > '.join(h.heading_path[1:])}"
                            for h in hits[:5]
                        ],
                    }
                )
    return SetResult(
        name,
        score(page_ranks, [k for k in CUTOFFS if k <= depth]),
        score(section_ranks, [k for k in CUTOFFS if k <= depth]),
        tuple(misses),
        tuple(latencies),
    )
