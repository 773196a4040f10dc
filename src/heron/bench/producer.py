"""The benchmark's producer: inserts events from a separate OS process, flat out or paced.

A process of its own keeps the producer off the consumers' GIL, and makes the
enqueue-to-handler-start latency a cross-process figure, as it is in production (the
Slack edge inserts, workers elsewhere claim). Every payload carries `ts`, the producer's
time.time() just before the insert, so the handler can compute the delay with the same
clock. The child is `python -m heron.bench.producer SPEC_JSON`, driven over its stdin
(`go`, then `stop` or end of file) and reporting on its stdout (`ready`, then one JSON
line), so it works whatever the calling program's main module looks like.
"""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import IO, Any, Literal

from heron.errors import BenchmarkError

System = Literal["heron", "pgqueuer"]
Insert = Callable[[list[dict[str, Any]]], Awaitable[None]]
ENTRYPOINT = "bench"  # Heron's event_type and PGQueuer's entrypoint

_READY_TIMEOUT = 60.0
_FINISH_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ProducerSpec:
    """What the producer inserts, where, and how fast."""

    system: System
    conninfo: str
    batch: int = 10  # events per INSERT statement
    rate: float | None = None  # events per second; None = as fast as it can


@dataclass(frozen=True, slots=True)
class ProducerReport:
    """What the producer did between go and stop."""

    enqueued: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events inserted per second."""
        return self.enqueued / self.seconds if self.seconds > 0 else 0.0


class ProducerProcess:
    """Parent side: start the producer, wait until it is connected, then go() and finish().

    Use as a context manager; the process is stopped (and killed if it must be) on exit.
    """

    def __init__(self, spec: ProducerSpec) -> None:
        self.spec = spec
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ProducerProcess:
        command = [sys.executable, "-m", "heron.bench.producer", json.dumps(asdict(self.spec))]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        stdout = self._pipe(self._process.stdout)
        readable, _, _ = select.select([stdout], [], [], _READY_TIMEOUT)
        line = stdout.readline().strip() if readable else ""
        if line != "ready":
            self._kill()
            raise BenchmarkError(
                f"the {self.spec.system} producer did not start (see its error above)"
            )
        return self

    def go(self) -> None:
        """Start inserting (returns at once)."""
        self._send("go")

    def finish(self) -> ProducerReport:
        """Stop inserting and return what was inserted."""
        assert self._process is not None
        self._send("stop")
        try:
            code = self._process.wait(_FINISH_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
            raise BenchmarkError(f"the {self.spec.system} producer did not stop") from None
        report = self._pipe(self._process.stdout).read().strip()
        if code != 0 or not report:
            raise BenchmarkError(
                f"the {self.spec.system} producer failed (exit code {code}; see its error above)"
            )
        data = json.loads(report)
        return ProducerReport(int(data["enqueued"]), float(data["seconds"]))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._send("stop")
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            self._kill()

    def _send(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None or process.stdin.closed:
            return
        try:
            process.stdin.write(line + "\n")
            process.stdin.flush()
        except BrokenPipeError:
            pass  # it exited; finish() reports how

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    @staticmethod
    def _pipe(pipe: IO[str] | None) -> IO[str]:
        assert pipe is not None
        return pipe


# -- child side ---------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Entry point of the child: connect, say ready, wait for go, insert until stop."""
    spec = ProducerSpec(**json.loads(argv[1]))
    enqueued, seconds = asyncio.run(_produce(spec))
    print(json.dumps({"enqueued": enqueued, "seconds": seconds}), flush=True)
    return 0


async def _produce(spec: ProducerSpec) -> tuple[int, float]:
    insert, close = await _connect(spec)
    try:
        print("ready", flush=True)
        if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
            return 0, 0.0
        stop = threading.Event()

        def wait_for_stop() -> None:
            sys.stdin.readline()  # `stop`, or end of file when the parent went away
            stop.set()

        threading.Thread(target=wait_for_stop, name="stop-reader", daemon=True).start()
        sent = 0
        start = time.perf_counter()
        while not stop.is_set():
            if spec.rate is not None:
                # Due times from the start, not from the last insert: no drift.
                delay = start + sent / spec.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            payloads = [{"n": sent + i, "ts": time.time()} for i in range(spec.batch)]
            await insert(payloads)
            sent += spec.batch
        return sent, time.perf_counter() - start
    finally:
        await close()


async def _connect(spec: ProducerSpec) -> tuple[Insert, Callable[[], Awaitable[None]]]:
    """An insert function on a connection of its own, each system through its own client."""
    if spec.system == "heron":
        import psycopg
        from psycopg.types.json import Jsonb

        from heron.queue import queries

        conn = await psycopg.AsyncConnection.connect(spec.conninfo, autocommit=True)
        sql = queries.query("enqueue_many")

        async def insert_heron(payloads: list[dict[str, Any]]) -> None:
            params = {"event_type": ENTRYPOINT, "payloads": [Jsonb(p) for p in payloads]}
            await conn.execute(sql, params)

        return insert_heron, conn.close

    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    apg = await asyncpg.connect(spec.conninfo)
    pgq = Queries(AsyncpgDriver(apg))

    async def insert_pgqueuer(payloads: list[dict[str, Any]]) -> None:
        n = len(payloads)
        await pgq.enqueue([ENTRYPOINT] * n, [json.dumps(p).encode() for p in payloads], [0] * n)

    async def close_pgqueuer() -> None:
        await apg.close()

    return insert_pgqueuer, close_pgqueuer


if __name__ == "__main__":
    sys.exit(main(sys.argv))
