"""Shared fixtures, and the test tiers: tests/unit, tests/integration, tests/e2e.

Tests under tests/integration get the `integration` marker and tests under tests/e2e the
`e2e` marker (`-m "not e2e"` skips the browser). They run in that order too: the fast
tiers fail first, and the e2e stack, which stays up until the session ends, starts after
the integration tests have finished with the shared Redis.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.infra",
    "tests.fixtures.learning",
    "tests.fixtures.serve",
    "tests.fixtures.stack",
]

TESTS_DIR = Path(__file__).parent
TIERS = {"unit": 0, "integration": 1, "e2e": 2}


def _tier(item: pytest.Item) -> str:
    try:
        return item.path.relative_to(TESTS_DIR).parts[0]
    except ValueError:
        return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (tier := _tier(item)) in ("integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=lambda item: TIERS.get(_tier(item), 0))  # stable: file order within a tier
