"""`loupe users ...` and `loupe tokens ...`: accounts and station tokens from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from app.auth.tables import LANGUAGES, ROLES
from app.cli_options import database_session, var_dir_option


@click.group()
def users() -> None:
    """People who log in."""


@users.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--language", default="en", show_default=True, type=click.Choice(LANGUAGES))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@var_dir_option
def create_user(username: str, role: str, language: str, password: str, var_dir: Path) -> None:
    """Create a user who logs in with USERNAME."""
    from sqlalchemy.exc import IntegrityError

    from app.auth import service

    with database_session(var_dir) as session:
        try:
            service.create_user(
                session=session, username=username, password=password, role=role,
                language=language,
            )  # fmt: skip
            session.commit()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        except IntegrityError as exc:
            raise click.ClickException(f"user {username!r} exists already") from exc
    click.echo(f"created {role} {username}")


@users.command("list")
@var_dir_option
def list_users(var_dir: Path) -> None:
    """Every user: name, role, language, active or disabled."""
    from app.auth import service

    with database_session(var_dir) as session:
        rows = service.list_users(session=session)
    for user in rows:
        state = "active" if user.is_active else "disabled"
        click.echo(f"{user.username:<24} {user.role:<10} {user.language:<3} {state}")


def _change_user(var_dir: Path, username: str, change: Any) -> None:
    """Apply change(session, user) to USERNAME and commit; a refusal is a clean error."""
    from app.auth import service

    with database_session(var_dir) as session:
        user = service.get_by_username(session=session, username=username)
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        try:
            change(session, user)
            session.commit()
        except ValueError as exc:  # InvalidInput, LastAdmin
            raise click.ClickException(str(exc)) from exc


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@var_dir_option
def set_role(username: str, role: str, var_dir: Path) -> None:
    """Give USERNAME another role (from their next request on)."""
    from app.auth import service

    _change_user(
        var_dir, username,
        lambda s, u: service.set_role(session=s, user=u, role=role, actor_id=None),
    )  # fmt: skip
    click.echo(f"{username} is now {role}")


@users.command("disable")
@click.argument("username")
@var_dir_option
def disable_user(username: str, var_dir: Path) -> None:
    """Stop USERNAME from logging in; an open session ends on its next request."""
    from app.auth import service

    _change_user(
        var_dir, username,
        lambda s, u: service.set_active(session=s, user=u, active=False, actor_id=None),
    )  # fmt: skip
    click.echo(f"disabled {username}")


@users.command("enable")
@click.argument("username")
@var_dir_option
def enable_user(username: str, var_dir: Path) -> None:
    """Let a disabled USERNAME log in again."""
    from app.auth import service

    _change_user(
        var_dir, username,
        lambda s, u: service.set_active(session=s, user=u, active=True, actor_id=None),
    )  # fmt: skip
    click.echo(f"enabled {username}")


@users.command("unlock")
@click.argument("username", required=False)
@click.option("--address", help="unlock a client address instead of an account")
@var_dir_option
def unlock(username: str | None, address: str | None, var_dir: Path) -> None:
    """Let USERNAME (or --address) try to log in again after too many failures."""
    from app.auth import throttle

    if (username is None) == (address is None):
        raise click.UsageError("name a USERNAME or an --address, not both")
    key = throttle.address_key(address) if address else throttle.account_key(username or "")
    with database_session(var_dir) as session:
        unlocked = throttle.unlock(session=session, key=key, actor_id=None)
        session.commit()
    click.echo(
        f"unlocked {username or address}" if unlocked else f"{username or address} was not locked"
    )


@users.command("reset-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@var_dir_option
def reset_password(username: str, password: str, var_dir: Path) -> None:
    """Set a new password for USERNAME."""
    from app.auth import service

    _change_user(
        var_dir, username,
        lambda s, u: service.set_password(session=s, user=u, password=password, actor_id=None),
    )  # fmt: skip
    click.echo(f"new password set for {username}")


@click.group()
def tokens() -> None:
    """Tokens that camera stations send as `Authorization: Bearer ...`."""


@tokens.command("create")
@click.argument("station")
@click.option(
    "--warehouse",
    is_flag=True,
    help="A token for the site's warehouse system: it reads every station's inspections "
    "and sends none. STATION names it (e.g. wms).",
)
@var_dir_option
def create_token(station: str, warehouse: bool, var_dir: Path) -> None:
    """Create a token for STATION and print it (it is shown only this once)."""
    from app.auth import service

    with database_session(var_dir) as session:
        try:
            token = service.create_station_token(
                session=session, station=station, scope="warehouse" if warehouse else "station"
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(token)


@tokens.command("list")
@var_dir_option
def list_tokens(var_dir: Path) -> None:
    """Every station token: id, station, scope, created, revoked (tokens are not kept)."""
    from app.auth import service

    with database_session(var_dir) as session:
        rows = service.list_tokens(session=session)
    for row in rows:
        revoked = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        created = f"{row.created_at:%Y-%m-%d %H:%M}"
        click.echo(f"{row.id:>5}  {row.station:<24} {row.scope:<9}  created {created}  {revoked}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@var_dir_option
def revoke_token(token_id: int, var_dir: Path) -> None:
    """Revoke the token with TOKEN_ID (see `loupe tokens list`); its station gets 401."""
    from app.auth import service

    with database_session(var_dir) as session:
        row = service.revoke_token(session=session, token_id=token_id, actor_id=None)
        if row is None:
            raise click.ClickException(f"no live token with id {token_id}")
        station = row.station
        session.commit()
    click.echo(f"revoked the token of {station}")
