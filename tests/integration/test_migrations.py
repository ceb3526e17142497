"""The migrations build exactly the tables the code declares, and every one downgrades."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

pytestmark = pytest.mark.integration


def test_the_migrations_match_every_table_and_downgrade_to_nothing(fresh_database):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from app.db import Base, import_all_tables
    from app.embedded import ROOT

    import_all_tables()
    url = fresh_database("loupe_migrations")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        config = Config(str(ROOT / "alembic.ini"))
        config.set_main_option("script_location", str(ROOT / "migrations"))
        config.attributes["configure_logging"] = False
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
            assert inspect(connection).get_table_names() == ["alembic_version"]
            command.upgrade(config, "head")
    finally:
        engine.dispose()
