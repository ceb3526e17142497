"""Bytes per row of Loupe's growing tables, from rows a real run wrote (docs/capacity.md).

    .venv/bin/python bench/db_row_sizes.py postgresql://postgres@127.0.0.1/DB [TABLE ...]

Point it at a database a run filled (e.g. `loupe simulate --own-stack` with
LOUPE_DATABASE_URL set). A few hundred rows give sizes dominated by empty pages, so each
table's rows are copied into a scratch table with the same indexes until there are about
20,000, and heap, TOAST and indexes are divided by the row count. The copies repeat every
key, which B-tree deduplication would fold away; live keys are unique (ids, times), so
deduplication is turned off. Unique indexes are built plain (the copies would break them).
The scratch tables are dropped again; the run's own rows are not touched.
"""

from __future__ import annotations

import re
import sys

import psycopg

GROWING = (
    "inspection", "photo", "region", "outbox", "review_task", "decision", "decision_region",
    "audit_event", "error_case", "webhook_event", "webhook_delivery", "webhook_attempt",
)  # fmt: skip
TARGET_ROWS = 20_000


def measure(cur: psycopg.Cursor[tuple[object, ...]], table: str) -> str:
    """One line of the table: rows seen, then bytes per row (heap+TOAST, indexes, total)."""
    rows = int(cur.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]
    if not rows:
        return f"{table:18} no rows"
    scratch = f"scratch_size_{table}"
    cur.execute(f"drop table if exists {scratch}")
    cur.execute(f"create table {scratch} (like {table} including defaults)")
    copies = max(1, TARGET_ROWS // rows)
    for _ in range(copies):
        cur.execute(f"insert into {scratch} select * from {table}")
    definitions = cur.execute(
        "select indexdef from pg_indexes where schemaname = 'public' and tablename = %s",
        (table,),
    ).fetchall()
    for number, (definition,) in enumerate(definitions):
        plain = str(definition).replace("CREATE UNIQUE INDEX", "CREATE INDEX")
        name = f"{scratch}_{number}"
        cur.execute(
            re.sub(r"CREATE INDEX \S+ ON \S+ ", f"CREATE INDEX {name} ON {scratch} ", plain)
        )
        if "USING btree" in plain:
            cur.execute(f"alter index {name} set (deduplicate_items = off)")
            cur.execute(f"reindex index {name}")
    cur.execute(f"vacuum analyze {scratch}")
    total = rows * copies
    heap = int(cur.execute(f"select pg_table_size('{scratch}')").fetchone()[0])  # type: ignore[index]
    index = int(cur.execute(f"select pg_indexes_size('{scratch}')").fetchone()[0])  # type: ignore[index]
    cur.execute(f"drop table {scratch}")
    return (
        f"{table:18} {rows:6d} {heap / total:12.0f} {index / total:10.0f} "
        f"{(heap + index) / total:10.0f} {len(definitions):8d}"
    )


def main() -> None:
    url, tables = sys.argv[1], sys.argv[2:] or list(GROWING)
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.cursor()
        print(f"{'table':18} {'rows':>6} {'heap+toast':>12} {'indexes':>10} {'total':>10} "
              f"{'indexes':>8}   (bytes per row)")  # fmt: skip
        for table in tables:
            print(measure(cur, table), flush=True)


if __name__ == "__main__":
    main()
