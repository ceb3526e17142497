"""Options shared by the `loupe` commands."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

var_dir_option = click.option(
    "--var-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LOUPE_VAR_DIR",
    default="var",
    show_default=True,
    help="Where `loupe run` keeps its data (LOUPE_VAR_DIR).",
)


@contextmanager
def database_session(var_dir: Path) -> Iterator[Any]:
    """A session on LOUPE_DATABASE_URL, or on the embedded database of a running `loupe run`."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import NullPool

    from app.embedded import running_embedded_url

    url = os.environ.get("LOUPE_DATABASE_URL") or running_embedded_url(
        var_dir.resolve() / "postgres", "loupe"
    )
    if not url:
        raise click.ClickException("no database: set LOUPE_DATABASE_URL or start `loupe run`")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def settings_and_store(var_dir: Path) -> tuple[Any, Any]:
    """The settings (with the command's --var-dir) and the object store they name."""
    from app.config import get_settings
    from app.storage import make_store

    settings = get_settings()
    if settings.var_dir != var_dir:
        settings = settings.model_copy(update={"var_dir": var_dir})
    return settings, make_store(settings)


def local_credentials(var_dir: Path) -> dict[str, Any]:
    """What `loupe run` saved in var/credentials.json (url, users, station token); {}
    when it has not run here."""
    path = var_dir / "credentials.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise KeyboardInterrupt inside, as Ctrl-C does, so that the
    `finally` of a command that started servers stops them (Python's default SIGTERM ends
    the process at once and leaves them running). SIGINT too: a shell starts background
    jobs with SIGINT ignored, and `kill -INT` would otherwise do nothing. On the way out
    both are ignored: a second signal must not cut the shutdown short."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
