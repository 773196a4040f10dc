"""`heron docs ingest PATH`: bring a folder (or one file) of documentation up to date."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from heron.docsearch.store import DocStore
from heron.errors import HeronError

SUFFIXES = frozenset({".md", ".markdown", ".mdx", ".html", ".htm", ".txt", ".rst"})


@dataclass(frozen=True, slots=True)
class IngestTotals:
    """What an ingest run changed, over all documents."""

    documents: int
    added: int
    removed: int
    unchanged: int
    documents_removed: int


def documentation_files(root: Path) -> Iterator[Path]:
    """The files under `root` Heron reads (hidden folders skipped), in a stable order."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if (
            path.is_file()
            and path.suffix.lower() in SUFFIXES
            and not any(part.startswith(".") for part in relative)
        ):
            yield path


def ingest_path(
    store: DocStore, root: Path, on_progress: Callable[[int, int], None] | None = None
) -> IngestTotals:
    """Ingest every documentation file under `root`; drop documents that vanished from it.

    Sources are recorded as resolved paths, so ingesting the same folder from anywhere
    updates the same documents.
    """
    if not root.exists():
        raise HeronError(f"{root} does not exist: give a folder or a file of documentation")
    root = root.resolve()
    files = list(documentation_files(root))
    added = removed = unchanged = 0
    with store.connect() as conn:
        for done, path in enumerate(files, start=1):
            try:
                content = path.read_text(encoding="utf-8", errors="replace")
            except OSError as error:
                raise HeronError(f"cannot read {path}: {error.strerror}") from None
            result = store.ingest(conn, str(path), content)
            added, removed = added + result.added, removed + result.removed
            unchanged += result.unchanged
            if on_progress is not None:
                on_progress(done, len(files))
        prefix = str(root) if root.is_file() else str(root) + "/"
        gone = store.remove_missing(conn, prefix, {str(p) for p in files})
        if added or removed or gone:
            store.settle(conn)
    return IngestTotals(len(files), added, removed, unchanged, gone)
