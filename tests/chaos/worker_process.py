"""A `heron` worker process for the multi-process tests: records every run in test_runs."""

from __future__ import annotations

import os
import threading
import time

import psycopg

from heron import Config, DatabaseConnection, Event, WorkerPool

_local = threading.local()


def record(event: Event) -> None:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    worker = os.environ["WORKER_NAME"]
    row = conn.execute(
        "INSERT INTO test_runs (event_id, worker, started_at) VALUES (%s, %s, clock_timestamp()) "
        "RETURNING id",
        (event.id, worker),
    ).fetchone()
    assert row is not None
    time.sleep(float(event.payload.get("work_seconds", 0.02)))
    conn.execute("UPDATE test_runs SET finished_at = clock_timestamp() WHERE id = %s", (row[0],))


def main() -> None:
    config = Config()
    db = DatabaseConnection(config.database_url)
    pool = WorkerPool(config.worker_pool_size, db, record, config=config)
    pool.run_forever()


if __name__ == "__main__":
    main()
