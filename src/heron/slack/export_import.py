"""Importing a Slack workspace export (the admin "Export data" zip, or that zip unpacked).

An export holds users.json, channels.json (public), groups.json (private), mpims.json and
dms.json, and one folder per conversation (its name; a DM's id) of per-day
`YYYY-MM-DD.json` files, thread replies included. Day files are read one at a time and
their messages go to the archive through COPY in large batches, one batch in flight
while the next is parsed, so memory stays flat and PostgreSQL and Python work at once.
Imports never overwrite what the archive has: importing twice adds nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import structlog

from heron.errors import HeronError
from heron.slack.archive import Archive
from heron.slack.directory import channel_action
from heron.slack.events import Action, MessageRow, PayloadError, SaveUser, SetMembers, message_row

log = structlog.get_logger(__name__)

# Measured on two cores: batches of 2,000 keep import_staged's sort (DISTINCT ON over
# whole rows) within the default work_mem, and three in flight keep PostgreSQL and
# Python both busy; batches of 5,000-10,000 cost PostgreSQL ~10% more CPU a message.
BATCH_SIZE = 2_000
IN_FLIGHT = 3
_SAVE_CHUNK = 1_000  # users and channels per transaction
_DAY_FILE = re.compile(r"^(?P<folder>[^/]+)/\d{4}-\d{2}-\d{2}\.json$")
# Which list file holds which kind of conversation, as flags on the conversation object.
_LISTS: dict[str, dict[str, bool]] = {
    "channels.json": {},
    "groups.json": {"is_private": True},
    "mpims.json": {"is_private": True, "is_mpim": True},
    "dms.json": {"is_private": True, "is_im": True},
}


class ExportError(HeronError):
    """The path is not a readable Slack export; the message says what is wrong."""


class ExportSource(Protocol):
    """The files of an export, by path relative to its top (where channels.json is)."""

    def names(self) -> list[str]: ...

    def read(self, name: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """Where an export import stands, after each day file."""

    files_done: int
    files_total: int
    messages: int
    added: int
    skipped: int


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export import did. `messages` were read; `added` were new to the archive."""

    users: int
    channels: int
    messages: int
    added: int
    skipped: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages read and imported per second."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ExportConversation:
    """A conversation of the export: the folders its day files may be in, what to save."""

    id: str
    folders: tuple[str, ...]  # its name, and its id (DMs are filed under their id)
    actions: tuple[Action, ...]


class _Folder:
    def __init__(self, root: Path) -> None:
        found = sorted(root.rglob("channels.json"), key=lambda p: len(p.parts)) or sorted(
            root.rglob("users.json"), key=lambda p: len(p.parts)
        )
        if not found:
            raise ExportError(f"{root} holds no channels.json or users.json: not a Slack export")
        self.root = found[0].parent
        self._names = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*.json"))

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> Any:
        return _parse(name, (self.root / name).read_bytes())


class _Zip:
    def __init__(self, archive: zipfile.ZipFile, path: Path) -> None:
        self.archive = archive
        listed = archive.namelist()
        tops = sorted(
            (n for n in listed if PurePosixPath(n).name in ("channels.json", "users.json")),
            key=lambda n: n.count("/"),
        )
        if not tops:
            raise ExportError(f"{path} holds no channels.json or users.json: not a Slack export")
        self.prefix = tops[0].rpartition("/")[0] + "/" if "/" in tops[0] else ""
        self._names = sorted(
            n.removeprefix(self.prefix)
            for n in listed
            if n.startswith(self.prefix) and n.endswith(".json")
        )

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> Any:
        try:
            data = self.archive.read(self.prefix + name)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ExportError(f"corrupt export: cannot read {name} ({error})") from None
        return _parse(name, data)


def _parse(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"corrupt export: {name} is not valid JSON ({error})") from None


@contextmanager
def open_export(path: Path) -> Iterator[ExportSource]:
    """An export zip or folder, with a clear error for anything else."""
    if path.is_dir():
        yield _Folder(path)
        return
    if not path.exists():
        raise ExportError(f"{path} does not exist: give a Slack export zip or its folder")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ExportError(f"{path} is not a readable zip file ({error})") from None
    with archive:
        yield _Zip(archive, path)


def read_conversations(source: ExportSource) -> list[ExportConversation]:
    """Every conversation in the list files, with member lists for the private ones."""
    present = set(source.names())
    found: list[ExportConversation] = []
    for filename, flags in _LISTS.items():
        if filename not in present:
            continue
        for entry in _list(source, filename):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
                continue
            channel = {**entry, **flags}
            members = [m for m in channel.get("members") or [] if isinstance(m, str)]
            if flags.get("is_im") and not channel.get("name"):
                channel["name"] = "dm-" + "-".join(members)
            action = channel_action(channel)
            actions: list[Action] = [action]
            if action.is_private:
                actions.append(SetMembers(action.id, tuple(members)))
            folders = (str(entry.get("name") or action.id), action.id)
            found.append(ExportConversation(action.id, folders, tuple(actions)))
    return found


def day_files(
    source: ExportSource, conversations: list[ExportConversation]
) -> list[tuple[str, str]]:
    """(file name, channel id) of every day file of a known conversation."""
    by_folder: dict[str, str] = {}
    for conversation in conversations:
        for folder in conversation.folders:
            by_folder.setdefault(folder, conversation.id)
    files: list[tuple[str, str]] = []
    unknown: set[str] = set()
    for name in source.names():
        match = _DAY_FILE.match(name)
        if match is None:
            continue
        channel_id = by_folder.get(match["folder"])
        if channel_id is None:
            unknown.add(match["folder"])
        else:
            files.append((name, channel_id))
    if unknown:
        log.warning("export folders without a conversation skipped", folders=sorted(unknown))
    return files


def _list(source: ExportSource, name: str) -> list[Any]:
    value = source.read(name)
    if not isinstance(value, list):
        raise ExportError(f"corrupt export: {name} is not a JSON list")
    return value


def parse_day(channel_id: str, messages: Any, name: str) -> tuple[list[MessageRow], int]:
    """The archive rows of one day file, and how many messages were unusable."""
    if not isinstance(messages, list):
        raise ExportError(f"corrupt export: {name} is not a JSON list of messages")
    rows: list[MessageRow] = []
    bad = 0
    for message in messages:
        try:
            if not isinstance(message, Mapping):
                raise PayloadError("not a message object")
            rows.append(message_row(channel_id, message))
        except PayloadError as error:
            bad += 1
            log.debug("export message skipped", file=name, error=str(error))
    return rows, bad


class _Batches:
    """COPY batches into the archive, a few in flight on their own connections while the
    caller parses the next: PostgreSQL inserts one batch while Python formats another."""

    def __init__(self, archive: Archive, size: int, in_flight: int) -> None:
        self.archive = archive
        self.size = size
        self.in_flight = in_flight
        self.rows: list[MessageRow] = []
        self.added = 0
        self._flights: list[asyncio.Task[int]] = []

    async def add(self, rows: list[MessageRow]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= self.size:
            await self._send()
        await asyncio.sleep(0)  # let the batches in flight take their next step

    async def finish(self) -> int:
        await self._send()
        while self._flights:
            await self._land()
        return self.added

    async def abandon(self) -> None:
        """Cancel the batches in flight after a failure (their transactions roll back)."""
        flights, self._flights = self._flights, []
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)

    async def _send(self) -> None:
        if not self.rows:
            return
        while len(self._flights) >= self.in_flight:
            await self._land()
        self._flights.append(asyncio.create_task(self.archive.import_messages(self.rows)))
        self.rows = []

    async def _land(self) -> None:
        self.added += await self._flights.pop(0)


async def import_export(
    archive: Archive,
    path: Path,
    *,
    batch_size: int = BATCH_SIZE,
    in_flight: int = IN_FLIGHT,
    on_progress: Callable[[ExportProgress], None] | None = None,
) -> ExportSummary:
    """Import users, conversations (with private members) and every message of an export."""
    started = time.perf_counter()
    with open_export(path) as source:
        users = await _import_users(archive, source)
        conversations = read_conversations(source)
        actions = [action for c in conversations for action in c.actions]
        for start in range(0, len(actions), _SAVE_CHUNK):
            await archive.save(actions[start : start + _SAVE_CHUNK])
        files = day_files(source, conversations)
        batches = _Batches(archive, batch_size, in_flight)
        messages = skipped = 0
        try:
            for done, (name, channel_id) in enumerate(files, 1):
                rows, bad = parse_day(channel_id, source.read(name), name)
                messages += len(rows)
                skipped += bad
                await batches.add(rows)
                if on_progress is not None:
                    on_progress(ExportProgress(done, len(files), messages, batches.added, skipped))
            added = await batches.finish()
        finally:
            await batches.abandon()
    summary = ExportSummary(
        users=users,
        channels=len(conversations),
        messages=messages,
        added=added,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
    log.info("slack export imported", path=str(path), messages=messages, added=added)
    return summary


async def _import_users(archive: Archive, source: ExportSource) -> int:
    if "users.json" not in source.names():
        return 0
    users = [SaveUser(dict(u)) for u in _list(source, "users.json") if _is_user(u)]
    for start in range(0, len(users), _SAVE_CHUNK):
        await archive.save(users[start : start + _SAVE_CHUNK])
    return len(users)


def _is_user(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("id"), str)
