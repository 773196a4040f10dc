"""The storm's questions and the model's answers to them: which answer each question gets
(so the check can tell a right reply from a garbled one) and which requests fail."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter

from heron.testing.anthropic import RecordedRequest, Reply, error, text

_TAG = re.compile(r"\bQ\d{5}\b")
_WORDS = ("lease", "queue", "worker", "answer", "thread", "reply", "event", "retry", "stream")
STREAM_DELAY = 0.04  # seconds between streamed words: a long answer takes 1-3 s


def tag_of(n: int) -> str:
    """The tag that names question `n` in its text, and the model's answer to it."""
    return f"Q{n:05d}"


def expected_answer(seed: int, tag: str, long_rate: float) -> str:
    """The model's answer to one question: short (Heron posts it) or long (it streams)."""
    rng = random.Random(f"{seed}:answer:{tag}")
    if rng.random() >= long_rate:
        return f"{tag}: yes, that works."
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(30, 60)))
    return f"{tag}: {words}."


class Model:
    """The Anthropic fake's responder: each question's answer, or a 529 at `fault_rate`
    (half of them as the HTTP status, half inside a started stream).

    Whether a request fails depends only on the seed, the question and how often it was
    asked before, never on which process asked first."""

    def __init__(self, seed: int, fault_rate: float, long_rate: float) -> None:
        self.seed = seed
        self.fault_rate = fault_rate
        self.long_rate = long_rate
        self._lock = threading.Lock()
        self._asked: Counter[str] = Counter()
        self.faults = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        tags = _TAG.findall(request.last_user_text)
        if not tags:  # a 400: Heron would apologise, and the check would show it
            return error(400, "the storm's model got a request without a question tag")
        tag = tags[-1]
        with self._lock:
            asked = self._asked[tag]
            self._asked[tag] += 1
        rng = random.Random(f"{self.seed}:model:{tag}:{asked}")
        if rng.random() < self.fault_rate:
            with self._lock:
                self.faults += 1
            return error(529, in_stream=rng.random() < 0.5)
        return text(expected_answer(self.seed, tag, self.long_rate), delay=STREAM_DELAY)
