"""Each area's tables module stands alone: it names other areas' tables by string only."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each runs in a fresh interpreter, since this one may have imported every table already.
PROBE = """
import sys
import {module}
from sqlalchemy.orm import configure_mappers
from app.db import Base

loaded_alone = sorted(m for m in sys.modules if m.endswith(".tables") and m.startswith("app."))
configure_mappers()
print(" ".join(loaded_alone))
print(" ".join(t.name for t in Base.metadata.sorted_tables))
"""


def _probe(module: str) -> tuple[set[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    )
    modules, tables = result.stdout.splitlines()
    return set(modules.split()), set(tables.split())


@pytest.mark.parametrize(
    ("module", "other"),
    [
        ("app.registry.tables", "app.learning.tables"),
        ("app.learning.tables", "app.registry.tables"),
    ],
)
def test_registry_and_learning_tables_do_not_import_each_other(module: str, other: str) -> None:
    loaded, tables = _probe(module)
    assert module in loaded and other not in loaded
    # Once the ORM is used, app.db has imported the rest, so every foreign key resolves
    # (sorted_tables raises on one that does not).
    assert {"model_version", "training_run", "dataset_snapshot", "outbox", "user"} <= tables
