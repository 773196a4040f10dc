"""What one queue system measured in each scenario, as immutable values with a JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from heron.bench.stats import LatencySummary, rate


@dataclass(frozen=True, slots=True)
class ClaimSample:
    """One claim (dequeue) statement as the client saw it."""

    at: float  # time.time() when it was sent
    seconds: float
    claimed: int


@dataclass(frozen=True, slots=True)
class ClaimStats:
    """Claims of a run: how many, how full, how long."""

    calls: int
    empty: int
    events: int
    latency: LatencySummary | None  # claims that returned events
    latency_all: LatencySummary | None  # every claim, empty ones included

    @classmethod
    def of(cls, samples: Sequence[ClaimSample]) -> ClaimStats:
        """Summarise the claims of a run."""
        full = [s.seconds for s in samples if s.claimed]
        return cls(
            calls=len(samples),
            empty=sum(1 for s in samples if not s.claimed),
            events=sum(s.claimed for s in samples),
            latency=LatencySummary.of_seconds(full),
            latency_all=LatencySummary.of_seconds([s.seconds for s in samples]),
        )

    @property
    def events_per_claim(self) -> float:
        """Mean batch a non-empty claim returned."""
        full = self.calls - self.empty
        return self.events / full if full else 0.0


@dataclass(frozen=True, slots=True)
class DrainResult:
    """A pre-filled queue emptied by the workers."""

    events: int
    seconds: float
    claims: ClaimStats | None

    @property
    def rate(self) -> float:
        """Events per second until the queue was empty."""
        return rate(self.events, self.seconds)


@dataclass(frozen=True, slots=True)
class SteadyResult:
    """Workers against one producer that inserts as fast as it can."""

    seconds: float
    completed: int
    enqueued: int
    backlog_at_end: int
    claims: ClaimStats | None

    @property
    def rate(self) -> float:
        """Completed events per second over the window."""
        return rate(self.completed, self.seconds)

    @property
    def enqueue_rate(self) -> float:
        """What the producer managed; a completed rate close to it means producer-bound."""
        return rate(self.enqueued, self.seconds)


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """A paced producer in another process; claim and enqueue-to-handler-start latencies."""

    offered_rate: float
    seconds: float
    enqueued: int
    handled: int
    wake: LatencySummary | None
    claims: ClaimStats | None
    notes: tuple[str, ...] = ()

    @classmethod
    def of_window(
        cls,
        *,
        offered_rate: float,
        seconds: float,
        begin: float,
        enqueued: int,
        wake: list[tuple[float, float]],
        samples: list[ClaimSample],
        notes: tuple[str, ...] = (),
    ) -> LatencyResult:
        """Keep what was sent (wake) and claimed (samples) in [begin, begin + seconds)."""
        end = begin + seconds
        return cls(
            offered_rate=offered_rate,
            seconds=seconds,
            enqueued=enqueued,
            handled=len(wake),
            wake=LatencySummary.of_seconds([d for sent, d in wake if begin <= sent < end]),
            claims=ClaimStats.of([s for s in samples if begin <= s.at < end]),
            notes=notes,
        )


@dataclass(frozen=True, slots=True)
class SystemResults:
    """Everything measured for one system."""

    name: str
    drain: DrainResult
    steady: SteadyResult
    latency: LatencyResult
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form, with derived rates added."""
        data = asdict(self)
        data["drain"]["rate"] = self.drain.rate
        data["steady"]["rate"] = self.steady.rate
        data["steady"]["enqueue_rate"] = self.steady.enqueue_rate
        for name in ("drain", "steady", "latency"):
            claims = getattr(self, name).claims
            if claims is not None:
                data[name]["claims"]["events_per_claim"] = claims.events_per_claim
        return data
