"""The learning loop's queries over a site's whole history, timed on a big database.

    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \\
        .venv/bin/python bench/dashboard_report.py --keep --repeat 1   # prints a URL
    .venv/bin/python bench/learning_queries.py URL [--repeat 5]

It reads the database that `dashboard_report.py --keep` seeds (1,000,000 decisions, about
1,050,000 region answers) and times, as medians of `--repeat` runs in fresh transactions
that are rolled back:

- the crops a classifier candidate is judged on (`build_crops_manifest`, 1000 crops in
  hash order), which starting a classifier run does in the web request;
- the eligible-item count the full /ml/models page shows (`count_eligible`);
- the first 50 eligible items (`eligible_items`), what a freeze of 50 reads;
- the few-shot picks, one per defect type (`pick_examples` without the photos: the rows).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.learning.crops import build_crops_manifest, hash_order, verified_crops  # noqa: E402
from app.learning.testset import count_eligible, eligible_items  # noqa: E402
from app.review.tables import DecisionRegion  # noqa: E402


def few_shot_rows(session: Session) -> list[Any]:
    """The rows pick_examples reads for one example of every type (its photos aside)."""
    rank = func.row_number().over(partition_by=DecisionRegion.defect_type, order_by=hash_order())
    ranked = verified_crops().add_columns(rank.label("rank")).subquery()
    return list(session.execute(select(ranked).where(ranked.c.rank <= 1)))


def timed(engine: Any, work: Callable[[Session], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        with Session(engine) as session:
            started = time.perf_counter()
            result = work(session)
            times.append((time.perf_counter() - started) * 1000)
            session.rollback()
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the database dashboard_report.py --keep printed")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    engine = create_engine(args.url)
    with Session(engine) as session:
        regions = session.scalar(select(func.count()).select_from(DecisionRegion))
    print(f"{regions:,} region answers")
    cases = {
        "build_crops_manifest(limit=1000)": lambda s: len(
            build_crops_manifest(session=s, limit=1000)["crops"]
        ),
        "count_eligible()": lambda s: count_eligible(session=s),
        "eligible_items(limit=50)": lambda s: len(eligible_items(session=s, limit=50)),
        "few-shot rows, 1 per type": lambda s: len(few_shot_rows(s)),
    }
    print(f"{'query':<36} {'median ms':>10}  result")
    for name, work in cases.items():
        ms, result = timed(engine, work, args.repeat)
        print(f"{name:<36} {ms:>10.0f}  {result}")


if __name__ == "__main__":
    main()
