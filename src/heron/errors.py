"""One exception tree for Heron: catch `HeronError` to catch everything Heron raises on purpose."""

from __future__ import annotations


class HeronError(Exception):
    """Root of every error Heron raises deliberately; messages say what to do next."""


class ConfigError(HeronError, ValueError):
    """Configuration is missing or invalid; `problems` lists every issue found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"invalid configuration: {self.problems[0]}")
            return
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problems):\n{lines}")


class DatabaseError(HeronError):
    """The database cannot be reached or is not in the state Heron needs."""


class MigrationError(DatabaseError):
    """A migration could not be applied or the applied ones differ from the shipped files."""


class EventNotFoundError(HeronError, LookupError):
    """No event has the given id."""


class EventStateError(HeronError):
    """The event is not in a state that allows the operation (e.g. replaying a completed one)."""


class BenchmarkError(HeronError):
    """A benchmark could not run; the message says what to fix."""


class PermanentError(HeronError):
    """Raised by a handler when retrying cannot help: the event goes straight to `failed`."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, for one-line logs and CLI errors."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class ModelUnavailable(HeronError):
    """The model could not answer now (busy, rate-limited, slow, unreachable); a later
    attempt may: the question's event is retried with backoff."""


class ModelRefused(HeronError):
    """The model refused the request for a reason a retry will not change."""
