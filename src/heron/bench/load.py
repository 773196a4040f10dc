"""The load run: locust posts signed Events API requests to `heron run` on loopback.

Three processes, so that none steals another's interpreter: `heron run` (Events API on,
Socket Mode off, workers answering questions in retrieval-only mode: no model key), locust
(gevent; `--processes N` forks N load generators) and this one, which serves the Slack
fake (auth.test, users, channels, and the replies the workers post) and does the counting.

`python -m heron.bench.load` (what `make load` runs) prints requests/s, ack p50/p95/p99
and the exactly-once check, and writes them as JSON (benchmarks/results/load.json).
tests/performance/test_load.py runs a short version.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psycopg

from heron.bench import load_report
from heron.bench.chat import chat_words
from heron.bench.database import BenchDatabase, drop, recreate, server_info
from heron.bench.report import machine_info
from heron.config import Config
from heron.database.connection import DatabaseConnection, resolve_database_url
from heron.database.url import normalize_url, psycopg_conninfo
from heron.docsearch.embedding import HashingEmbedder
from heron.errors import BenchmarkError
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.embeddings import embed_pending
from heron.slack.events import BotIdentity, message_row
from heron.testing.slack import SlackFake

BENCH_DATABASE = "heron_bench_load"
TARGET_REQUESTS_PER_S = 500.0
TARGET_ACK_P99_MS = 100.0
# Settings a developer's shell may carry that would change what runs: a model key (the
# workers would call it), a Socket Mode token, another database, other MCP servers.
_DROPPED_ENV = ("SLACK_", "ANTHROPIC_", "OPENAI_", "GITHUB_", "DATABASE_URL", "HERON_MCP_")
HISTORY_SPAN = timedelta(days=7)
HISTORY_GAP = timedelta(hours=1)  # between the history's last message and the run
HISTORY_BATCH = 5000


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """One run's shape; the defaults are the full run of `make load`."""

    users: int = 50
    spawn_rate: float = 10.0
    seconds: float = 60.0
    processes: int = 1  # locust load generators (more than 1: a master and N workers)
    # Requests/s per user: 50 users at 11/s offer 550/s, so the targets (>= 500 requests/s,
    # ack p99 <= 100 ms) are judged at that rate; 0 sends the next as soon as one is acked
    # (the most the system takes; latency is then users / rate, by Little's law).
    rate_per_user: float = 11.0
    mention_share: float = 0.02  # 1 message in 50 asks Heron something
    retry_share: float = 0.05
    heron_workers: int = 5
    channels: int = 10
    people: int = 20
    # Messages already in the archive when the run starts (the week before it), as in a
    # workspace with history: Heron takes the archive's statistics at start, so archive
    # search tells common words from rare ones, as it does in production.
    history: int = 20_000
    locustfile: Path = Path("tests/performance/locustfile.py")


def run_load(database_url: str, settings: LoadSettings, *, log_dir: Path) -> dict[str, Any]:
    """Run Heron and locust against a migrated database; return what was measured.

    `log_dir` keeps Heron's and locust's logs and the generator's records."""
    if not settings.locustfile.is_file():
        raise BenchmarkError(f"no locustfile at {settings.locustfile} (run from the repository)")
    records = log_dir / "requests"
    conninfo = psycopg_conninfo(normalize_url(database_url))
    with SlackFake() as slack:
        people = [slack.add_user(f"load{n}").id for n in range(settings.people)]
        channels = [
            slack.add_channel(f"load-{n}", members=people).id for n in range(settings.channels)
        ]
        started = datetime.now(UTC)
        asyncio.run(_seed_history(conninfo, slack, channels, people, settings, started))
        with _heron(database_url, slack, settings, log_dir) as (heron, url):
            cpu = _CpuMeter(heron.pid, _postmaster_pid(conninfo))
            env = {
                "HERON_LOAD_SIGNING_SECRET": slack.signing_secret,
                "HERON_LOAD_TEAM_ID": slack.team_id,
                "HERON_LOAD_APP_ID": slack.app_id,
                "HERON_LOAD_BOT_USER_ID": slack.bot_user_id,
                "HERON_LOAD_CHANNELS": ",".join(channels),
                "HERON_LOAD_USERS": ",".join(people),
                "HERON_LOAD_MENTION_SHARE": str(settings.mention_share),
                "HERON_LOAD_RETRY_SHARE": str(settings.retry_share),
                "HERON_LOAD_RATE": str(settings.rate_per_user),
                "HERON_LOAD_OUTPUT": str(records),
            }
            load_average = os.getloadavg()[0]
            _locust(url, settings, env, log_dir)
            usage = cpu.done()
            answered = _completed_questions(conninfo)
    requests = load_report.read_requests(records)
    if not requests:
        raise BenchmarkError(f"locust sent nothing; see {log_dir / 'locust.log'}")
    steady_from = requests[0].sent_at + settings.users / settings.spawn_rate
    answered_requests = sum(1 for r in requests if r.ms is not None)
    for name in ("heron", "postgresql", "locust"):
        seconds = usage[f"{name}_seconds"]
        usage[f"{name}_ms_per_request"] = (
            None if seconds is None else round(1000 * seconds / max(1, answered_requests), 3)
        )
    result: dict[str, Any] = {
        "benchmark": "Events API load: signed Slack events against heron run on loopback",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        **load_report.traffic(requests, steady_from),
        "exactly_once": load_report.exactly_once(requests, _stored(conninfo, started)),
        "questions_answered_during_run": answered,
        "cpu": usage,
        # Other work on the machine moves every figure; this says how busy it was before.
        "load_average_1min_at_start": load_average,
    }
    figures = result["ack_ms"] or {}
    result["targets"] = {
        "requests_per_s": f">= {TARGET_REQUESTS_PER_S:g}",
        "ack_p99_ms": f"<= {TARGET_ACK_P99_MS:g}",
        "requests_per_s_met": result["steady_requests_per_s"] >= TARGET_REQUESTS_PER_S,
        "ack_p99_met": figures.get("p99", float("inf")) <= TARGET_ACK_P99_MS,
    }
    return result


def summary(result: dict[str, Any]) -> str:
    """One paragraph for people: the figures, the targets, the check and who used the CPU."""
    ack, check, cpu = result["ack_ms"] or {}, result["exactly_once"], result["cpu"]
    settings, targets = result["settings"], result["targets"]
    offered = settings["users"] * settings["rate_per_user"]
    met = targets["requests_per_s_met"] and targets["ack_p99_met"]
    load = result["load_average_1min_at_start"]
    return (
        f"{result['answered']:,} requests from {settings['users']} users "
        f"({f'{offered:g}/s offered' if offered else 'no wait'}; {result['failures']} failed, "
        f"{result['unfinished']} unanswered at the stop): {result['steady_requests_per_s']:.0f} "
        f"requests/s steady ({result['requests_per_s']:.0f} overall); ack p50 "
        f"{ack.get('p50', 0):.1f} ms, p95 {ack.get('p95', 0):.1f} ms, p99 "
        f"{ack.get('p99', 0):.1f} ms (targets {targets['requests_per_s']} requests/s, p99 "
        f"{targets['ack_p99_ms']} ms: {'met' if met else 'NOT met'}); exactly once: "
        f"{'yes' if check['ok'] else 'NO'} ({check['acked_events']:,} events acked, "
        f"{check['acked_redeliveries']:,} of them redeliveries; {check['archive_rows']:,} "
        f"archive rows, {check['queue_events']:,} questions queued); CPU (% of one core): "
        f"heron {cpu['heron']:.0f}, locust {cpu['locust']:.0f}, PostgreSQL "
        f"{cpu['postgresql'] or 0:.0f}, rest {cpu['rest']:.0f}, machine {cpu['machine']:.0f} "
        f"of {100 * cpu['cores']:.0f}; load average before {load:.1f}"
    )


# -- Heron ------------------------------------------------------------------------------


@contextmanager
def _heron(
    database_url: str, slack: SlackFake, settings: LoadSettings, log_dir: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`heron run` with the Events API on; yields it and its base URL once it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV)}
    env |= {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "HERON_HTTP_HOST": "127.0.0.1",
        "HERON_HTTP_PORT": "0",
        "HERON_EMBEDDING_PROVIDER": "hashing",
        "HERON_LOG_LEVEL": "INFO",
        "HERON_LOG_FORMAT": "json",
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    heron = subprocess.Popen(
        [sys.executable, "-m", "heron", "run", "--workers", str(settings.heron_workers)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert heron.stderr is not None
    listening: concurrent.futures.Future[str] = concurrent.futures.Future()
    reader = threading.Thread(
        target=_read_log, args=(heron.stderr, log_dir / "heron.log", listening), daemon=True
    )
    reader.start()
    try:
        try:
            url = listening.result(timeout=120)
        except (concurrent.futures.TimeoutError, EOFError):
            raise BenchmarkError(f"heron run did not start; see {log_dir / 'heron.log'}") from None
        yield heron, url
    finally:
        if heron.poll() is None:
            heron.send_signal(signal.SIGINT)
        try:
            heron.wait(timeout=60)
        except subprocess.TimeoutExpired:
            heron.kill()
            heron.wait()
        reader.join(timeout=10)
        heron.stderr.close()


def _read_log(stream: IO[bytes], path: Path, listening: concurrent.futures.Future[str]) -> None:
    """Copy Heron's log to `path`; resolve `listening` with the URL it serves on."""
    with path.open("wb") as log:
        for line in stream:
            log.write(line)
            if not listening.done() and b"http server listening" in line:
                try:
                    listening.set_result(str(json.loads(line)["url"]))
                except (ValueError, KeyError) as error:
                    listening.set_exception(error)
        log.flush()
    if not listening.done():
        listening.set_exception(EOFError("heron run exited"))


async def _seed_history(
    conninfo: str,
    slack: SlackFake,
    channels: list[str],
    people: list[str],
    settings: LoadSettings,
    before: datetime,
) -> None:
    """`settings.history` messages over the week before `before`, with their vectors
    (Heron would otherwise spend the run embedding them)."""
    if settings.history <= 0:
        return
    rng = random.Random(settings.history)
    end = before.timestamp() - HISTORY_GAP.total_seconds()
    step = HISTORY_SPAN.total_seconds() / settings.history
    rows = [
        message_row(
            rng.choice(channels),
            {
                "type": "message",
                "user": rng.choice(people),
                "text": chat_words(rng),
                "ts": f"{end - n * step:.6f}",
            },
        )
        for n in range(settings.history)
    ]
    pool = open_pool(conninfo, max_size=2, name="heron-load-history")
    await pool.open()
    try:
        archive = Archive(pool, BotIdentity(user_id=slack.bot_user_id))
        for start in range(0, len(rows), HISTORY_BATCH):
            await archive.import_messages(rows[start : start + HISTORY_BATCH])
        embedder = HashingEmbedder()  # as HERON_EMBEDDING_PROVIDER=hashing in _heron
        while await embed_pending(pool, embedder, batch=HISTORY_BATCH) == HISTORY_BATCH:
            pass
    finally:
        await pool.close()


def _stored(conninfo: str, since: datetime) -> load_report.Stored:
    """What the run stored: the history before `since` is not the run's."""
    with psycopg.connect(conninfo) as conn:
        receipts = [r[0] for r in conn.execute("SELECT event_id FROM slack_event_receipts")]
        messages = [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT channel_id, ts FROM slack_messages WHERE message_at >= %s", (since,)
            )
        ]
        questions = [
            r[0]
            for r in conn.execute(
                "SELECT dedupe_key FROM events WHERE event_type = 'slack.question'"
            )
        ]
    return load_report.Stored(receipts, messages, questions)


def _completed_questions(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE event_type = 'slack.question' "
            "AND status = 'completed'"
        ).fetchone()
    return int(row[0]) if row else 0


# -- locust -----------------------------------------------------------------------------


def _locust(url: str, settings: LoadSettings, env: dict[str, str], log_dir: Path) -> None:
    """locust headless, in a process of its own (gevent must not meet Heron's asyncio)."""
    command = [
        sys.executable, "-m", "locust", "-f", str(settings.locustfile), "--headless",
        "--host", url, "--users", str(settings.users), "--spawn-rate", str(settings.spawn_rate),
        "--run-time", f"{settings.seconds:g}s", "--stop-timeout", "10", "--only-summary",
        "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    if settings.processes > 1:
        command += ["--processes", str(settings.processes)]
    with (log_dir / "locust.log").open("wb") as log:
        done = subprocess.run(
            command,
            env=os.environ | env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=settings.seconds + 120,
            check=False,
        )
    if done.returncode != 0:
        raise BenchmarkError(f"locust exited with {done.returncode}; see {log_dir / 'locust.log'}")


# -- CPU --------------------------------------------------------------------------------


class _CpuMeter:
    """CPU used from now until done(), as % of one core: Heron, locust (the children this
    process has reaped: locust and its forks), PostgreSQL (when its server runs on this
    machine) and the rest of the machine (the Slack fake, anything else running)."""

    def __init__(self, heron_pid: int, postgres_pid: int | None) -> None:
        self.heron_pid = heron_pid
        self.postgres_pid = postgres_pid
        self.started = time.monotonic()
        self.heron = _process_seconds(heron_pid)
        self.postgres = _server_seconds(postgres_pid)
        self.children = _reaped_children_seconds()
        self.machine = _machine_busy_seconds()

    def done(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.started
        heron = _process_seconds(self.heron_pid) - self.heron
        locust = _reaped_children_seconds() - self.children
        postgres = _server_seconds(self.postgres_pid)
        postgres = None if postgres is None or self.postgres is None else postgres - self.postgres
        machine = _machine_busy_seconds() - self.machine

        def pct(seconds: float) -> float:
            return round(100 * seconds / wall, 1) if wall > 0 else 0.0

        return {
            "cores": float(os.cpu_count() or 1),
            "seconds": round(wall, 3),
            "heron_seconds": heron,
            "postgresql_seconds": postgres,
            "locust_seconds": locust,
            "heron": pct(heron),
            "locust": pct(locust),
            "postgresql": None if postgres is None else pct(postgres),
            "rest": pct(machine - heron - locust - (postgres or 0.0)),
            "machine": pct(machine),
        }


def _process_seconds(pid: int, *, children: bool = False) -> float:
    """CPU seconds of a process (and of its reaped children: PostgreSQL's ended backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _server_seconds(postmaster: int | None) -> float | None:
    """The PostgreSQL server's CPU seconds: the postmaster, its live and its ended backends."""
    if postmaster is None:
        return None
    total = 0.0
    try:
        total += _process_seconds(postmaster, children=True)
        for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
            with suppress(OSError, IndexError):
                total += _process_seconds(int(child))
    except OSError:
        return None
    return total


def _postmaster_pid(conninfo: str) -> int | None:
    """The server's main process when it runs on this machine (a backend's parent)."""
    with psycopg.connect(conninfo) as conn:  # the backend lives only while connected
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:
            status = Path(f"/proc/{row[0] if row else 0}/status").read_text()
        except OSError:
            return None  # another machine (or one that hides its processes)
    for line in status.splitlines():
        if line.startswith("PPid:"):
            parent = int(line.split()[1])
            comm = Path(f"/proc/{parent}/comm").read_text().strip()
            return parent if comm.startswith(("postgres", "postmaster")) else None
    return None


def _reaped_children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# -- the command ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """`python -m heron.bench.load`: the full run on a fresh database, results as JSON."""
    defaults = LoadSettings()
    parser = argparse.ArgumentParser(prog="python -m heron.bench.load", description=__doc__)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--spawn-rate", type=float, default=defaults.spawn_rate)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--processes", type=int, default=defaults.processes,
                        help="locust load generator processes")  # fmt: skip
    parser.add_argument("--rate-per-user", type=float, default=defaults.rate_per_user,
                        help="requests/s per user; 0: as fast as acks come")  # fmt: skip
    parser.add_argument("--mention-share", type=float, default=defaults.mention_share)
    parser.add_argument("--retry-share", type=float, default=defaults.retry_share)
    parser.add_argument("--heron-workers", type=int, default=defaults.heron_workers)
    parser.add_argument("--history", type=int, default=defaults.history,
                        help="messages in the archive before the run")  # fmt: skip
    parser.add_argument("--locustfile", type=Path, default=defaults.locustfile)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/load.json"))
    args = parser.parse_args(argv)
    settings = LoadSettings(
        users=args.users,
        spawn_rate=args.spawn_rate,
        seconds=args.seconds,
        processes=args.processes,
        rate_per_user=args.rate_per_user,
        mention_share=args.mention_share,
        retry_share=args.retry_share,
        heron_workers=args.heron_workers,
        history=args.history,
        locustfile=args.locustfile,
    )
    server = resolve_database_url(Config().database_url)
    bench = recreate(server, BENCH_DATABASE)
    try:
        db = DatabaseConnection(bench.url_string)
        db.create_tables()
        db.dispose()
        with tempfile.TemporaryDirectory(prefix="heron-load-") as logs:
            result = run_load(bench.url_string, settings, log_dir=Path(logs))
        result["created_at"] = datetime.now(UTC).isoformat()
        result["machine"] = machine_info(server_info(BenchDatabase(bench.url)))
    finally:
        drop(server, BENCH_DATABASE)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(summary(result) + f"; results in {args.output}")


if __name__ == "__main__":
    main()
