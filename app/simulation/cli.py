"""`loupe simulate`: days of a simulated site against a running Loupe."""

from __future__ import annotations

import csv
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import httpx

from app.cli_options import var_dir_option

SECONDS_A_DAY = 86_400
# The field report's inspectors: about 680 items a day, one every ~40 s.
FIELD_THINK_S = 40.0


@click.command("simulate")
@click.option("--days", default=3, show_default=True, type=click.IntRange(1, 365))
@click.option("--stations", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--inspectors", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--items-per-day", default=40, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--inspector-error", default=0.02, show_default=True,
              type=click.FloatRange(0.0, 1.0),
              help="Share of verdicts an inspector gets wrong.")  # fmt: skip
@click.option("--defect-rate", default=0.3, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of garments with planted defects.")  # fmt: skip
@click.option("--speed", default=1440.0, show_default=True, type=click.FloatRange(1.0),
              help="Simulated seconds per real second: 1440 makes a day a minute. Inspectors "
              "think 40 s per item in simulated time.")  # fmt: skip
@click.option("--drain-timeout", default=600.0, show_default=True,
              type=click.FloatRange(0.0),
              help="Real seconds to wait for the backlog after the last day.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the daily table here.")  # fmt: skip
@click.option("--url", help="The web app (default: from var/credentials.json).")
@click.option("--token", help="A station token (default: from var/credentials.json).")
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help="The admin who creates the simulated inspectors; the password is read "
              "from LOUPE_SIMULATE_ADMIN_PASSWORD, else var/credentials.json.")  # fmt: skip
@var_dir_option
def simulate(
    days: int, stations: int, inspectors: int, items_per_day: int, inspector_error: float,
    defect_rate: float, speed: float, drain_timeout: float, seed: int,
    csv_path: Path | None, url: str | None, token: str | None, admin_name: str, var_dir: Path,
) -> None:  # fmt: skip
    """Run DAYS of a simulated site against a running Loupe, through its public
    interfaces only: STATIONS upload garments with known defects, INSPECTORS (accounts
    made for the run) work the queue in the browser's way, and the daily table (items,
    automatic and human share, accuracy against the truth, escapes, backlog, models in
    service) is printed as each day ends. Retraining and experiments run on the stack's
    own beat schedule: shorten its intervals to see them within a short run."""
    from app.simulation import actors
    from app.simulation.days import COLUMNS, day_row, table
    from app.simulation.garments import garment

    credentials = _credentials(var_dir)
    base = url or credentials.get("url")
    station_token = token or credentials.get("station_token")
    admin_password = os.environ.get("LOUPE_SIMULATE_ADMIN_PASSWORD") or (
        credentials.get("users", {}).get(admin_name, {}).get("password")
    )
    if not base or not station_token or not admin_password:
        raise click.ClickException(
            "no Loupe to simulate against: start `loupe run` (it writes var/credentials.json) "
            "or give --url, --token and LOUPE_SIMULATE_ADMIN_PASSWORD"
        )
    run = uuid.uuid4().hex[:6]
    day_s = SECONDS_A_DAY / speed
    truths: dict[str, str] = {}
    seen: dict[str, tuple[int, str, str]] = {}  # inspection id -> (day, truth, external id)
    stop = threading.Event()
    try:
        admin = actors.logged_in(base, admin_name, admin_password)
        names = [f"sim-{run}-{i + 1}" for i in range(inspectors)]
        passwords = actors.create_inspectors(admin, names)
        people = [
            actors.Inspector(actors.logged_in(base, n, passwords[n]), n, truths,
                             inspector_error, FIELD_THINK_S / speed)
            for n in names
        ]  # fmt: skip
    except (actors.SimulationError, httpx.HTTPError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"simulating {days} day(s) at {base}: {stations} station(s), {inspectors} "
               f"inspector(s) ({', '.join(names)}), {items_per_day} garments a day, a day "
               f"lasting {day_s:.0f} s")  # fmt: skip
    api = httpx.Client(base_url=base, timeout=actors.TIMEOUT_S)
    rows = []
    with ThreadPoolExecutor(max_workers=inspectors + stations) as pool:
        working = [pool.submit(p.work, stop) for p in people]
        try:
            for day in range(1, days + 1):
                started = time.monotonic()
                garments = [garment(seed, day, i, defect_rate) for i in range(items_per_day)]
                for g in garments:
                    truths[g.external_id] = g.truth
                per_station = [garments[s::stations] for s in range(stations)]
                uploads = [
                    pool.submit(_station, api, station_token, f"sim-{s + 1}", batch, day_s, stop)
                    for s, batch in enumerate(per_station)
                ]
                for future in uploads:
                    for inspection_id, g in future.result():
                        seen[inspection_id] = (day, g.truth, g.external_id)
                stop.wait(max(0.0, day_s - (time.monotonic() - started)))
                rows.append(day_row(day, _read(api, station_token, seen)))
                shown = table(rows).splitlines()
                click.echo("\n".join(shown) if day == 1 else shown[-1])
            actors.wait_until(
                lambda: all(s.verdict is not None for s in _read(api, station_token, seen)),
                drain_timeout, every_s=1.0,
            )  # fmt: skip
            final = _read(api, station_token, seen)
            rows = [day_row(d, final) for d in range(1, days + 1)]
        except (actors.SimulationError, httpx.HTTPError) as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            stop.set()
            for worker in working:
                worker.result()
    click.echo("\nafter the backlog cleared (or --drain-timeout):")
    click.echo(table(rows))
    decided = sum(p.decided for p in people)
    mistakes = sum(p.mistakes for p in people)
    click.echo(f"inspectors decided {decided} item(s), {mistakes} of them wrong on purpose")
    for p in people:
        for error in p.errors[:5]:
            click.echo(f"{p.name}: {error}", err=True)
    if csv_path:
        with csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(row.as_dict())
        click.echo(f"wrote {csv_path}")


def _credentials(var_dir: Path) -> dict[str, Any]:
    path = var_dir / "credentials.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _station(
    api: httpx.Client, token: str, station: str, batch: list[Any], day_s: float,
    stop: threading.Event,
) -> list[tuple[str, Any]]:  # fmt: skip
    """One station's garments of the day, spread evenly over it."""
    from app.simulation.actors import upload

    sent = []
    gap = day_s / max(1, len(batch))
    for item in batch:
        if stop.is_set():
            break
        sent.append((upload(api, token, station, item), item))
        stop.wait(gap)
    return sent


def _read(api: httpx.Client, token: str, seen: dict[str, tuple[int, str, str]]) -> list[Any]:
    """What the station API says about every garment sent so far."""
    from app.simulation.days import Seen

    found = []
    for inspection_id, (day, truth, _) in seen.items():
        answer = api.get(f"/api/v1/inspections/{inspection_id}",
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        answer.raise_for_status()
        body = answer.json()
        outcome = body.get("outcome") or {}
        found.append(Seen(day, truth, body["status"], body.get("route"), outcome.get("verdict"),
                          outcome.get("decided_by"), body.get("detector_version"),
                          body.get("classifier_version")))  # fmt: skip
    return found
