"""Options shared by the `loupe` commands."""

from __future__ import annotations

from pathlib import Path

import click

var_dir_option = click.option(
    "--var-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LOUPE_VAR_DIR",
    default="var",
    show_default=True,
    help="Where `loupe run` keeps its data (LOUPE_VAR_DIR).",
)
