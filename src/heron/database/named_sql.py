"""Named SQL files shipped in the package: `-- name: x` headers split a file into queries."""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from typing import LiteralString

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


class NamedQueries:
    """The queries of one shipped .sql file, read on first use."""

    def __init__(self, package: str, filename: str) -> None:
        self.package = package
        self.filename = filename

    @cached_property
    def _queries(self) -> dict[str, str]:
        text = resources.files(self.package).joinpath(self.filename).read_text(encoding="utf-8")
        parts = _NAME.split(text)
        return {
            name: body.strip().rstrip(";")
            for name, body in zip(parts[1::2], parts[2::2], strict=True)
        }

    def __call__(self, name: str) -> LiteralString:
        """The text of a named query (shipped with the package, never built from input)."""
        try:
            return self._queries[name]  # type: ignore[return-value,unused-ignore]
        except KeyError:
            raise KeyError(f"no query named {name!r} in {self.package}/{self.filename}") from None
