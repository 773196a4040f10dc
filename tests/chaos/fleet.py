"""`heron run` processes for the storm: started, watched, killed, replaced and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from heron.testing.anthropic import FakeAnthropic
from heron.testing.slack import SlackFake

LEASE_SECONDS = 2.0  # EVENT_VISIBILITY_TIMEOUT: a dead process's events come back soon
STOP_SECONDS = 45.0  # a graceful stop with nothing in flight takes a few seconds
STARTED_LINE = "Heron is running"  # what `heron run` prints once everything is up


def heron_env(
    database_url: str,
    slack: SlackFake,
    model: FakeAnthropic,
    data: Path,
    *,
    max_retry_count: int,
) -> dict[str, str]:
    """The environment of a `heron run` against the fakes, with short leases and backoff."""
    foreign = ("SLACK_", "DATABASE_", "ANTHROPIC_", "HERON_", "OPENAI_", "GITHUB_", "LOGFIRE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    return env | {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "ANTHROPIC_API_KEY": model.api_key,
        "ANTHROPIC_BASE_URL": model.base_url,
        "HERON_MODEL": "anthropic:claude-sonnet-4-6",
        "HERON_DATA_DIR": str(data),
        "HERON_HTTP_PORT": "0",
        "HERON_QUESTIONS_PER_USER_PER_HOUR": "0",
        "HERON_DAILY_SPEND_LIMIT_USD": "0",
        "HERON_EMBEDDING_PROVIDER": "hashing",
        "EVENT_VISIBILITY_TIMEOUT": str(LEASE_SECONDS),
        "HERON_RESCUE_INTERVAL": "0.2",
        "RETRY_BACKOFF_BASE_SECONDS": "0.2",
        "MAX_RETRY_COUNT": str(max_retry_count),
        "HERON_LOG_FORMAT": "json",
    }


class Heron:
    """One `heron run`: its stderr copied to a log file; `started` is set (on the loop
    that created it) once it says it runs, with its workers, Slack and HTTP up."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.started = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self._copier = threading.Thread(target=self._copy, name=f"copy-{log.name}", daemon=True)
        self._copier.start()

    def _copy(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr, self.log.open("w") as out:
            for line in self.proc.stderr:
                out.write(line)
                if line.startswith(STARTED_LINE):
                    with contextlib.suppress(RuntimeError):  # the loop is gone: storm over
                        self._loop.call_soon_threadsafe(self.started.set)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._copier.join(10)
        return code


class Fleet:
    """`processes` slots, each running one `heron run` at a time; a killed one is replaced.

    `command` starts Heron (a diagnosis may wrap it); `on_hang(proc)` runs before a
    process that ignored SIGTERM for STOP_SECONDS is killed."""

    def __init__(self, processes: int, workers: int, env: dict[str, str], logs: Path) -> None:
        self.processes = processes
        self.workers = workers
        self.env = env
        self.logs = logs
        self.command = [sys.executable, "-m", "heron"]
        self.on_hang: Callable[[subprocess.Popen[str]], None] | None = None
        self.slots: list[Heron] = []
        self.exits: list[str] = []  # processes that ended without being told to
        self.hung: list[str] = []  # processes a graceful stop did not end
        self._spawned = 0

    def start(self) -> None:
        """Start every slot's process (from the storm's event loop)."""
        self.slots = [self._spawn() for _ in range(self.processes)]

    async def ready(self, count: int, within: float) -> list[int]:
        """Wait until at least `count` slots run a started process (or `within` seconds
        pass); the slots that do."""
        deadline = time.monotonic() + within
        while True:
            self.check()
            ready = [n for n, heron in enumerate(self.slots) if heron.started.is_set()]
            left = deadline - time.monotonic()
            if len(ready) >= count or left <= 0:
                return ready
            starting = [heron.started for heron in self.slots if not heron.started.is_set()]
            waits = [asyncio.create_task(started.wait()) for started in starting]
            # At most a second, to notice a process that died while starting.
            await asyncio.wait(waits, timeout=min(left, 1.0), return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()

    def kill(self, slot: int) -> None:
        """SIGKILL the process in `slot`, then start its replacement."""
        heron = self.slots[slot]
        heron.proc.send_signal(signal.SIGKILL)
        heron.wait(30)
        self.slots[slot] = self._spawn()

    def pause(self, slot: int) -> None:
        """SIGSTOP the process in `slot`: frozen, as in a long GC pause or a VM stall."""
        self.slots[slot].proc.send_signal(signal.SIGSTOP)

    def resume(self, slot: int) -> None:
        self.slots[slot].proc.send_signal(signal.SIGCONT)

    def slot_of(self, pid: int) -> int | None:
        return next((n for n, heron in enumerate(self.slots) if heron.proc.pid == pid), None)

    def check(self, *, replace: bool = True) -> None:
        """Record any process that died by itself (and start another in its slot)."""
        for slot, heron in enumerate(self.slots):
            if heron.proc.poll() is not None:
                self.exits.append(f"{heron.log.name}: exit {heron.proc.returncode}")
                if replace:
                    self.slots[slot] = self._spawn()

    def stop(self) -> list[int]:
        """SIGTERM every process (a graceful stop) and wait; their exit statuses."""
        self.check(replace=False)
        for heron in self.slots:
            if heron.proc.poll() is None:
                heron.proc.send_signal(signal.SIGTERM)
        codes = []
        for heron in self.slots:
            try:
                codes.append(heron.wait(STOP_SECONDS))
            except subprocess.TimeoutExpired:
                self.hung.append(f"{heron.log.name}: running {STOP_SECONDS:g} s after SIGTERM")
                if self.on_hang is not None:
                    self.on_hang(heron.proc)
                heron.proc.kill()
                codes.append(heron.wait(30))
        return codes

    def _spawn(self) -> Heron:
        self._spawned += 1
        command = [*self.command, "run", "--workers", str(self.workers)]
        return Heron(command, self.env, self.logs / f"heron-{self._spawned:02d}.log")
