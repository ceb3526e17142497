"""`loupe simulate`: days of a simulated site against a running Loupe."""

from __future__ import annotations

import csv
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx

from app.cli_options import local_credentials, stopped_by_signals, var_dir_option

if TYPE_CHECKING:
    from app.simulation.garments import Garment

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
@click.option("--own-stack", "own_stack", type=click.Path(file_okay=False, path_type=Path),
              help="Start a Loupe of its own in this directory, as `loupe run` does, with "
              "beat's clock sped up with the simulation (accelerated_settings).")  # fmt: skip
@click.option("--detector", "detector_uri",
              help="With --own-stack: the detector it starts with (a directory or s3:// URI; "
              "default: LOUPE_DETECTOR_URI, else tiny demo models).")  # fmt: skip
@click.option("--classifier", "classifier_uri",
              help="With --own-stack: the classifier it starts with (as --detector).")  # fmt: skip
@var_dir_option
def simulate(
    days: int, stations: int, inspectors: int, items_per_day: int, inspector_error: float,
    defect_rate: float, speed: float, drain_timeout: float, seed: int,
    csv_path: Path | None, url: str | None, token: str | None, admin_name: str,
    own_stack: Path | None, detector_uri: str | None, classifier_uri: str | None, var_dir: Path,
) -> None:  # fmt: skip
    """Run DAYS of a simulated site against a running Loupe, through its public
    interfaces only: STATIONS upload garments with known defects, INSPECTORS (accounts
    made for the run) work the queue in the browser's way, and the daily table (items,
    automatic and human share, accuracy against the truth, escapes, backlog, models in
    service) is printed as each day ends. Retraining and experiments run on the stack's
    own beat schedule: --own-stack starts one whose beat runs at the simulation's speed."""
    plan = Plan(days, stations, inspectors, items_per_day, inspector_error, defect_rate,
                speed, drain_timeout, seed, csv_path, admin_name)  # fmt: skip
    if own_stack is None:
        if detector_uri or classifier_uri:
            raise click.UsageError("--detector and --classifier start a stack: give --own-stack")
        _simulate(plan, url, token, var_dir)
        return
    env = accelerated_settings(speed, items_per_day)
    env = {k: v for k, v in env.items() if k not in os.environ}  # the operator's word wins
    _on_own_stack(plan, own_stack, env, detector_uri, classifier_uri)


def _on_own_stack(
    plan: Plan, var_dir: Path, env: dict[str, str], detector_uri: str | None,
    classifier_uri: str | None,
) -> None:  # fmt: skip
    """The simulation against a Loupe started for it, stopped at the end whatever happens
    (SIGTERM and Ctrl-C included)."""
    from app.standalone import Stack, StackError, StackOptions

    stack = Stack(StackOptions(var_dir=var_dir, env=env, detector_uri=detector_uri,
                               classifier_uri=classifier_uri))  # fmt: skip
    sped_up = ", ".join(f"{k}={v}" for k, v in sorted(env.items()))
    try:
        with stopped_by_signals():
            try:
                stack.start()
                click.echo(f"started Loupe at {stack.base_url} in {var_dir}, beat sped up: "
                           f"{sped_up}")  # fmt: skip
                _simulate(plan, stack.base_url, None, var_dir)
            except StackError as exc:
                raise click.ClickException(f"the simulation's Loupe did not start: {exc}") from exc
            except KeyboardInterrupt:
                click.echo("Stopping the simulation's Loupe ...", err=True)
    finally:
        stack.stop()  # signals are ignored by now: a second one cannot cut this short


def accelerated_settings(speed: float, items_per_day: int) -> dict[str, str]:
    """Beat's clock at the simulation's speed, and the learning loop's minimums at the
    size of a simulated site: the trigger looks every simulated hour and may retrain once
    a simulated day, on a day's decisions; an experiment is judged on half a day's items
    and a better challenger is promoted without waiting for a person; fine-tuning is short
    enough for a CPU."""
    hour = max(5.0, 3600.0 / speed)
    return {
        "LOUPE_RETRAIN_CHECK_INTERVAL_S": f"{hour:g}",
        "LOUPE_EXPERIMENT_CHECK_INTERVAL_S": f"{hour:g}",
        "LOUPE_RETRAIN_COOLDOWN_S": f"{24 * hour:g}",
        "LOUPE_RETRAIN_MIN_NEW_SAMPLES": str(max(1, items_per_day)),
        "LOUPE_RETRAIN_MIN_SAMPLES": str(max(10, items_per_day // 2)),
        "LOUPE_RETRAIN_MIN_PER_CLASS": "2",
        "LOUPE_RETRAIN_STEPS": "60",
        "LOUPE_EXPERIMENT_MIN_SAMPLES": str(max(10, items_per_day // 2)),
        "LOUPE_EXPERIMENT_AUTO_PROMOTE": "1",
    }


@dataclass(frozen=True)
class Plan:
    days: int
    stations: int
    inspectors: int
    items_per_day: int
    inspector_error: float
    defect_rate: float
    speed: float
    drain_timeout: float
    seed: int
    csv_path: Path | None
    admin_name: str


def _simulate(plan: Plan, url: str | None, token: str | None, var_dir: Path) -> None:
    from app.simulation import actors
    from app.simulation.days import COLUMNS, day_row, table
    from app.simulation.garments import garment

    days, stations, inspectors, speed = plan.days, plan.stations, plan.inspectors, plan.speed
    items_per_day, seed, admin_name = plan.items_per_day, plan.seed, plan.admin_name

    credentials = local_credentials(var_dir)
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
    truths: dict[str, Garment] = {}  # by external id
    seen: dict[str, tuple[int, str, str]] = {}  # inspection id -> (day, truth, external id)
    stop = threading.Event()
    try:
        admin = actors.logged_in(base, admin_name, admin_password)
        names = [f"sim-{run}-{i + 1}" for i in range(inspectors)]
        passwords = actors.create_inspectors(admin, names)
        people = [
            actors.Inspector(actors.logged_in(base, n, passwords[n]), n, truths,
                             plan.inspector_error, FIELD_THINK_S / speed)
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
                garments = [garment(seed, day, i, plan.defect_rate) for i in range(items_per_day)]
                for g in garments:
                    truths[g.external_id] = g
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
                plan.drain_timeout, every_s=1.0,
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
    if plan.csv_path:
        with plan.csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(row.as_dict())
        click.echo(f"wrote {plan.csv_path}")


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
