"""`loupe thresholds simulate`: the site's history replayed under other bands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from app.cli_options import database_session, var_dir_option
from app.policy.thresholds import FIELD_REPORT_BANDS, MIN_SUPPORT, Rate


@click.group()
def thresholds() -> None:
    """The review band (LOUPE_THRESHOLD_HIGH and _LOW) measured on this site's history."""


@thresholds.command("simulate")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Items routed on or after this day (UTC); 28 days back by default.")  # fmt: skip
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Items routed before this day (UTC); now by default.")  # fmt: skip
@click.option("--pairs", default=FIELD_REPORT_BANDS, show_default=True,
              help="Bands to replay, HIGH:LOW, comma-separated.")  # fmt: skip
@click.option("--grid", is_flag=True,
              help="Replay a grid of bands and print the curve of human work against "
              "escapes (the bands nothing else beats on both).")  # fmt: skip
@click.option("--min-support", default=MIN_SUPPORT, show_default=True, type=click.IntRange(1),
              help="Refuse a rate with fewer audits (or decided items) behind it.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@var_dir_option
def simulate(
    since: datetime | None,
    until: datetime | None,
    pairs: str,
    grid: bool,
    min_support: int,
    as_json: bool,
    var_dir: Path,
) -> None:
    """For each band: the share the models would decide, the share sent to people, and
    the escape and false-reject rates estimated from the inspectors' decisions (inside
    the band in force) and the random audits (outside it), with 95 % intervals."""
    from app.config import get_settings
    from app.policy import thresholds as policy
    from app.thresholds.bands import with_applied
    from app.thresholds.history import simulate as replay_history

    try:
        bands = policy.grid() if grid else policy.parse_bands(pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--pairs") from exc
    start, end = _window(since, until)
    with database_session(var_dir) as session:
        routing = with_applied(get_settings(), session).routing
        history, estimates = replay_history(
            session, routing=routing, bands=bands, since=start, until=end,
            min_support=min_support,
        )  # fmt: skip
    shown = policy.frontier(estimates) if grid else estimates
    if as_json:
        click.echo(json.dumps({
            "since": start.isoformat(), "until": end.isoformat(),
            "items": len(history.items), "waiting": history.waiting,
            "in_force": str(policy.Band(routing.thresholds.high, routing.thresholds.low)),
            "bands": [e.as_dict() for e in shown],
        }, indent=2))  # fmt: skip
        return
    strata = {s: sum(i.stratum == s for i in history.items)
              for s in ("reviewed", "audited", "automatic")}  # fmt: skip
    click.echo(
        f"{len(history.items)} decided items routed {start:%Y-%m-%d} to {end:%Y-%m-%d}: "
        f"{strata['reviewed']} reviewed, {strata['audited']} audited, "
        f"{strata['automatic']} automatic without an audit; {history.waiting} waiting for "
        "a decision left out"
    )
    click.echo(f"band in force {routing.thresholds.high:.2f}:{routing.thresholds.low:.2f}; "
               f"audits {routing.thresholds.audit_rate:.1%} of automatic items")  # fmt: skip
    if grid:
        click.echo(f"the curve: {len(shown)} of {len(estimates)} bands that nothing else beats")
    click.echo(f"{'band':<10} {'automatic':>9} {'to people':>9}  {'escapes (95 %)':<28} "
               f"{'false rejects (95 %)':<28} labeled (audits)")  # fmt: skip
    for e in shown:
        click.echo(
            f"{e.band!s:<10} {e.automatic_share:>9.1%} {e.human_share:>9.1%}  "
            f"{_rate(e.escape):<28} {_rate(e.false_reject):<28} "
            f"{e.escape.labeled} ({e.escape.audited})"
        )
    refused = {r.refused for e in shown for r in (e.escape, e.false_reject) if r.refused}
    for reason in sorted(refused):
        click.echo(f"refused: {reason}")


def _rate(rate: Rate) -> str:
    if rate.value is None or rate.low is None or rate.high is None:
        return "refused"
    return f"{rate.value:.2%} ({rate.low:.2%}-{rate.high:.2%})"


@thresholds.command("recommend")
@click.option("--max-escape", required=True, type=click.FloatRange(0.0, 1.0, max_open=True),
              help="The escape rate not to exceed (share of routed items).")  # fmt: skip
@click.option("--confidence", default=0.9, show_default=True,
              type=click.FloatRange(0.5, 1.0, max_open=True),
              help="The probability with which the bound holds.")  # fmt: skip
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Items routed on or after this day (UTC); 28 days back by default.")  # fmt: skip
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Items routed before this day (UTC); now by default.")  # fmt: skip
@click.option("--propose", is_flag=True,
              help="Also propose it on /ml/models, where an ml user may apply it.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@var_dir_option
def recommend(
    max_escape: float,
    confidence: float,
    since: datetime | None,
    until: datetime | None,
    propose: bool,
    as_json: bool,
    var_dir: Path,
) -> None:
    """The band with the least human work whose escape rate stays at or under
    --max-escape with probability --confidence (Learn then Test on the inspectors'
    decisions and the audits). It applies nothing: --propose puts it on /ml/models for
    an ml user to apply."""
    from app.config import get_settings
    from app.policy import thresholds as policy
    from app.thresholds import bands
    from app.thresholds.history import simulate as replay_history
    from app.thresholds.history import with_band_in_force

    start, end = _window(since, until)
    with database_session(var_dir) as session:
        routing = bands.with_applied(get_settings(), session).routing
        history, estimates = replay_history(
            session, routing=routing, bands=with_band_in_force(routing, policy.grid()),
            since=start, until=end, min_support=MIN_SUPPORT,
        )  # fmt: skip
        found = policy.recommend(estimates, max_escape=max_escape, confidence=confidence)
        in_force = estimates[0]
        checked = sum(i.stratum != "automatic" for i in history.items)
        audits = sum(i.stratum == "audited" for i in history.items)
        proposed = None
        if propose and found.chosen is not None and found.chosen.band != in_force.band:
            guarantee = (
                f"With probability {confidence:g} the escape rate is at most "
                f"{max_escape:.2%} ({len(history.items)} items routed {start:%Y-%m-%d} to "
                f"{end:%Y-%m-%d}, {checked} checked by people, {audits} of them audits)."
            )
            proposed = bands.propose(session, band=found.chosen.band, note=guarantee,
                                     user_id=None).id  # fmt: skip
            session.commit()
    if as_json:
        click.echo(json.dumps({
            "max_escape": max_escape, "confidence": confidence, "items": len(history.items),
            "checked": checked, "audits": audits, "tested": found.tested,
            "chosen": found.chosen.as_dict() if found.chosen else None,
            "in_force": in_force.as_dict(), "proposed": proposed,
        }, indent=2))  # fmt: skip
    elif found.chosen is None:
        click.echo(
            f"No band can be shown to keep escapes at or under {max_escape:.2%} with "
            f"probability {confidence:g} from {len(history.items)} items ({checked} checked "
            f"by people, {audits} of them audits). Keep the band in force ({in_force.band}), "
            "audit more (LOUPE_AUDIT_RATE) or wait for more decisions."
        )
    else:
        e = found.chosen
        click.echo(
            f"With probability {confidence:g} the escape rate is at most {max_escape:.2%} "
            f"under {e.band}: {len(history.items)} items, {checked} checked by people, "
            f"{audits} of them audits ({found.tested} bands tested in order)."
        )
        click.echo(
            f"It decides {e.automatic_share:.1%} automatically and sends {e.human_share:.1%} "
            f"to people (the band in force, {in_force.band}: {in_force.human_share:.1%}). "
            f"Estimated escapes {_rate(e.escape)}, false rejects {_rate(e.false_reject)}."
        )
        if proposed is not None:
            click.echo(f"Proposed as band {proposed}: an ml user applies it on /ml/models.")
        elif e.band == in_force.band:
            click.echo("It is the band in force: nothing to change.")
        else:
            click.echo("Nothing was changed: --propose puts it on /ml/models to be applied.")
    if found.chosen is None:
        raise SystemExit(1)


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = (until or datetime.now(UTC)).replace(tzinfo=UTC)
    start = (since or end - timedelta(days=28)).replace(tzinfo=UTC)
    if start >= end:
        raise click.BadParameter("--since must come before --until", param_hint="--since")
    return start, end
