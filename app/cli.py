"""The `loupe` command: run the whole system, send images, manage users and station tokens.

Other areas add their commands to `main` (or a subgroup) here.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from app.auth.cli import tokens, users
from app.cli_options import local_credentials, stopped_by_signals, var_dir_option
from app.exports.cli import export
from app.imports.cli import import_history
from app.instructions.cli import instructions
from app.learning.cli import prompts, retrain
from app.registry.cli import models
from app.simulation.cli import simulate
from app.thresholds.cli import thresholds
from app.webhooks.cli import webhooks

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
UPLOAD_PATH = "/api/v1/inspections"


@click.group()
def main() -> None:
    """Loupe: human-in-the-loop defect inspection for returned apparel."""


# --- run ----------------------------------------------------------------------------------


@main.command()
@var_dir_option
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for /healthz.")
def run(var_dir: Path, timeout: float) -> None:
    """Start everything on this machine: Postgres, Redis, Ray Serve, Celery, relay, web.

    LOUPE_DATABASE_URL / LOUPE_REDIS_URL point it at running servers instead of the
    embedded ones; LOUPE_DETECTOR_URI / LOUPE_CLASSIFIER_URI at real models instead of
    tiny random ones. A child that crashes is started again with backoff (see
    /healthz's "supervisor"); one that keeps crashing stops everything. Ctrl-C stops it;
    data stays under the var directory.
    """
    from app.standalone import Stack, StackError, StackOptions

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)  # which ones ran
    stack = Stack(StackOptions(var_dir=var_dir, startup_timeout_s=timeout))
    exit_code = 0
    try:
        with stopped_by_signals():
            try:
                stack.start()
                _print_welcome(stack)
                # A crashed child is started again with backoff; this returns only when one
                # keeps crashing, and then nothing that depends on it can work.
                given_up = stack.wait()
                assert given_up is not None  # it only returns None when told to stop
                name, record = given_up
                click.secho(
                    f"{name} keeps crashing (last exit code {record.last_exit}, "
                    f"{record.restarts} restarts); stopping Loupe",
                    fg="red",
                    err=True,
                )
                exit_code = 1
            except StackError as exc:
                click.secho(f"Loupe did not start: {exc}", fg="red", err=True)
                exit_code = 1
            except KeyboardInterrupt:
                click.echo("Stopping Loupe ...", err=True)
    finally:
        stack.stop()  # signals are ignored by now: a second Ctrl-C cannot cut this short
    raise SystemExit(exit_code)


def _print_welcome(stack: Any) -> None:
    click.secho(f"Loupe is running at {stack.base_url}", fg="green", bold=True)
    path = stack.credentials_path
    if stack.first_run and stack.credentials:
        click.echo(f"First run: these accounts were created (saved in {path}):")
        for name, user in stack.credentials["users"].items():
            click.echo(f"  {name:<10} role {user['role']:<10} password {user['password']}")
        station, token = stack.credentials["station"], stack.credentials["station_token"]
        click.echo(f"  station token for {station}: {token}")
    elif stack.credentials:
        click.echo(f"Credentials of the first run: {path}")
    else:
        click.echo("The database already had users; add more with `loupe users create`.")
    click.echo("Press Ctrl-C to stop.")


# --- ingest -------------------------------------------------------------------------------


def _image_files(paths: tuple[Path, ...]) -> Iterator[tuple[Path, str]]:
    """(file, external id) for every image under the paths, folders recursively.

    The external id is the path relative to the current directory, or to the argument's
    parent for files outside it, so re-sending a folder finds the same inspections.
    """
    cwd = Path.cwd()
    for arg in paths:
        arg = arg.resolve()
        found = [arg] if arg.is_file() else sorted(p for p in arg.rglob("*") if p.is_file())
        for file in found:
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            base = cwd if file.is_relative_to(cwd) else arg.parent
            yield file, file.relative_to(base).as_posix()


def _error_message(response: Any) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    text = detail if isinstance(detail, str) else json.dumps(detail)
    return f"HTTP {response.status_code}: {text}"


def _upload(client: Any, file: Path, external_id: str, form: dict[str, str]) -> str:
    """Send one image; returns 'created', 'present', or raises RuntimeError with the reason."""
    import httpx

    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    try:
        with file.open("rb") as fh:
            response = client.post(
                UPLOAD_PATH,
                files={"image": (file.name, fh, content_type)},
                data={"external_id": external_id, **form},
            )
    except httpx.HTTPError as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code == 201:
        return "created"
    if response.status_code == 200:
        return "present"
    raise RuntimeError(_error_message(response))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--url", help="The web app's address (default: from var/credentials.json).")
@click.option("--token", envvar="LOUPE_STATION_TOKEN", help="Station token (LOUPE_STATION_TOKEN).")
@click.option("--station", help="Station name, when the token does not imply it.")
@click.option("--view", help="Which view every photo shows: front, back, detail, ...")
@var_dir_option
def ingest(
    paths: tuple[Path, ...],
    url: str | None,
    token: str | None,
    station: str | None,
    view: str | None,
    var_dir: Path,
) -> None:
    """Upload every image under PATHS (jpg, png, webp, bmp, tif; folders recursively)."""
    import httpx
    from tqdm import tqdm

    local = local_credentials(var_dir)
    url = (url or local.get("url") or "http://127.0.0.1:8000").rstrip("/")
    token = token or local.get("station_token")
    if not token:
        raise click.UsageError("no station token: pass --token, or run `loupe run` once")
    files = list(_image_files(paths))
    if not files:
        raise click.UsageError("no image files found")
    form = {k: v for k, v in {"station": station, "view": view}.items() if v}
    counts = {"created": 0, "present": 0}
    failures: list[tuple[str, str]] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120.0) as client:
        for file, external_id in tqdm(files, unit="image", desc="ingest"):
            try:
                counts[_upload(client, file, external_id, form)] += 1
            except RuntimeError as exc:
                failures.append((external_id, str(exc)))
    click.echo(
        f"created {counts['created']}, already present {counts['present']}, failed {len(failures)}"
    )
    for external_id, reason in failures:
        click.echo(f"  failed {external_id}: {reason}", err=True)
    if failures:
        raise SystemExit(1)


# --- infer --------------------------------------------------------------------------------


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option("--reasons", is_flag=True, help="Also generate each region's reason (slower).")
@click.option("--language", type=click.Choice(["en", "ko"]), help="Language of the reasons.")
def infer(images: tuple[Path, ...], as_json: bool, reasons: bool, language: str | None) -> None:
    """Run the models on IMAGES (the photos of one garment) and print what they say.

    Uses the Serve app at LOUPE_SERVE_URL when it answers, the models of
    LOUPE_DETECTOR_URI / LOUPE_CLASSIFIER_URI in this process otherwise. Prints regions,
    distributions, exceptions, the route and timings; nothing is stored.
    """
    from app.config import get_settings
    from app.inspections.local_infer import format_report, infer_photos
    from models.contracts import InferenceUnavailable

    settings = get_settings()
    photos = [path.read_bytes() for path in images]
    try:
        report = infer_photos(
            photos,
            settings,
            with_reasons=reasons,
            language=language or settings.classifier_language,
        )
    except (InferenceUnavailable, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))


main.add_command(users)
main.add_command(tokens)
main.add_command(retrain)
main.add_command(prompts)
main.add_command(models)
main.add_command(instructions)
main.add_command(import_history)
main.add_command(webhooks)
main.add_command(export)
main.add_command(thresholds)
main.add_command(simulate)
