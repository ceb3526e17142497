"""`loupe webhooks ...`: endpoints, their delivery logs and replays from the shell."""

from __future__ import annotations

import os
from pathlib import Path

import click

from app.cli_options import database_session, var_dir_option


@click.group()
def webhooks() -> None:
    """Receivers that get each final decision as a signed POST (README: Webhooks)."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--events", default="decided", show_default=True, help="Comma-separated; there is: decided."
)
@click.option(
    "--secret-from-env",
    metavar="VAR",
    help="Sign with the secret in environment variable VAR (the receiver has it already) "
    "instead of a new one.",
)
@var_dir_option
def add(url: str, events: str, secret_from_env: str | None, var_dir: Path) -> None:
    """Register URL; prints the new signing secret, which is shown only this once."""
    from app.policy.webhooks import BadEndpoint
    from app.webhooks import service

    secret = None
    if secret_from_env:
        secret = os.environ.get(secret_from_env, "")
        if not secret:
            raise click.ClickException(f"environment variable {secret_from_env} is empty or unset")
    with database_session(var_dir) as session:
        try:
            endpoint, signing_secret = service.add_endpoint(
                session=session, url=url, events=[events], secret=secret
            )
        except BadEndpoint as exc:
            raise click.ClickException(str(exc)) from exc
        endpoint_id, chosen = endpoint.id, ",".join(endpoint.events)
        session.commit()
    click.echo(f"added endpoint {endpoint_id}: {url} ({chosen})")
    if secret is None:
        click.echo(f"signing secret (shown only now): {signing_secret}")


@webhooks.command("list")
@var_dir_option
def list_endpoints(var_dir: Path) -> None:
    """Every endpoint: id, URL, events, and its deliveries by state (secrets are not shown)."""
    from app.webhooks import service

    with database_session(var_dir) as session:
        rows = service.list_endpoints(session=session)
        for row in rows:
            e, n = row.endpoint, row.counts
            click.echo(
                f"{e.id:>5}  {e.url}  [{','.join(e.events)}]  delivered {n['delivered']}, "
                f"being tried {n['pending'] + n['retrying']}, failed {n['failed']}"
            )
    if not rows:
        click.echo("no webhook endpoints")


@webhooks.command("remove")
@click.argument("endpoint_id", type=int)
@var_dir_option
def remove(endpoint_id: int, var_dir: Path) -> None:
    """Stop sending to ENDPOINT_ID (see `loupe webhooks list`); what it was owed is closed."""
    from app.webhooks import service

    with database_session(var_dir) as session:
        removed = service.remove_endpoint(session=session, endpoint_id=endpoint_id)
        if removed is None:
            raise click.ClickException(f"no webhook endpoint with id {endpoint_id}")
        url = removed.url
        session.commit()
    click.echo(f"removed endpoint {endpoint_id}: {url}")


@webhooks.command("deliveries")
@click.option("--endpoint", "endpoint_id", type=int, help="Only this endpoint's deliveries.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@var_dir_option
def deliveries(endpoint_id: int | None, limit: int, var_dir: Path) -> None:
    """The newest deliveries, each with its attempts: when, the answer, how long it took."""
    from app.webhooks import service

    with database_session(var_dir) as session:
        rows = service.delivery_log(session=session, endpoint_id=endpoint_id, limit=limit)
        for d in rows:
            click.echo(
                f"{d.id:>6}  endpoint {d.endpoint_id}  {d.event.type}  "
                f"inspection {d.event.inspection_id}  {d.status}"
            )
            for a in d.attempt_log:
                replay = f" (replay {a.replay})" if a.replay else ""
                answer = a.status_code if a.status_code is not None else "no answer"
                error = f"  {a.error[:120]}" if a.error else ""
                click.echo(
                    f"        #{a.number}{replay} {a.started_at:%Y-%m-%d %H:%M:%S}  "
                    f"{answer}  {a.duration_ms:.0f} ms{error}"
                )
    if not rows:
        click.echo("no deliveries")


@webhooks.command("replay")
@click.argument("delivery_id", type=int)
@var_dir_option
def replay(delivery_id: int, var_dir: Path) -> None:
    """Send DELIVERY_ID again: the same event, signed afresh (the worker sends it)."""
    from app.webhooks import service

    with database_session(var_dir) as session:
        delivery = service.replay(session=session, delivery_id=delivery_id)
        if delivery is None:
            raise click.ClickException(f"no webhook delivery with id {delivery_id}")
        session.commit()
    click.echo(f"delivery {delivery_id} will be sent again")
