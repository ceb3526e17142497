"""Migration files sort in their chain's order, so the folder reads as the history."""

from __future__ import annotations

import re
from pathlib import Path

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def _revision(path: Path, name: str) -> str | None:
    match = re.search(rf'^{name}: [^=]+= "?([\w]+)"?$', path.read_text(), re.MULTILINE)
    assert match, f"{path.name} has no {name}"
    return None if match.group(1) == "None" else match.group(1)


def test_migration_files_are_numbered_in_their_chains_order():
    files = sorted(VERSIONS.glob("*.py"))
    assert files, "no migrations found"
    previous = None
    for number, path in enumerate(files, start=1):
        assert path.name.startswith(f"{number:04d}_"), path.name
        assert _revision(path, "down_revision") == previous, path.name
        previous = _revision(path, "revision")
