"""What must hold after the chaos suite's faults, read straight from the database with SQL
(not through the app's own models, so that a bug there cannot hide itself).

Each check returns the problems it found, in words; an empty list is a pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool


def verify(database_url: str, accepted: Mapping[str, str], key_prefix: str) -> list[str]:
    """Every upload a station saw accepted ({Idempotency-Key: inspection id}) is routed
    exactly once, and nothing went to an automatic route because something broke."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT idempotency_key, id::text AS id, status, route, inference_error, "
                    "detector_version, classifier_version FROM inspection "
                    "WHERE idempotency_key LIKE :prefix"
                ),
                {"prefix": key_prefix + "%"},
            ).all()
            return [
                *_one_inspection_per_upload(rows, accepted),
                *_all_routed(rows),
                *_no_automatic_route_from_a_failure(rows),
                *_review_tasks(conn, key_prefix),
                *_nothing_recorded_twice(conn, key_prefix),
            ]
    finally:
        engine.dispose()


def _one_inspection_per_upload(rows: list[Any], accepted: Mapping[str, str]) -> list[str]:
    problems = []
    per_key = Counter(row.idempotency_key for row in rows)
    if twice := [key for key, n in per_key.items() if n > 1]:
        problems.append(f"{len(twice)} upload(s) made more than one inspection: {twice[:5]}")
    ids = {row.idempotency_key: row.id for row in rows}
    if lost := [key for key in accepted if key not in ids]:
        problems.append(f"{len(lost)} accepted upload(s) are not in the database: {lost[:5]}")
    if other := [key for key, id_ in accepted.items() if key in ids and ids[key] != id_]:
        problems.append(f"{len(other)} upload(s) answered with another inspection's id")
    if unheard := [key for key in ids if key not in accepted]:
        # The station never got its answer and gave up: the item exists, nobody knows it.
        problems.append(f"{len(unheard)} inspection(s) no station saw accepted: {unheard[:5]}")
    return problems


def _all_routed(rows: list[Any]) -> list[str]:
    waiting = Counter(row.status for row in rows if row.status != "routed" or row.route is None)
    if not waiting:
        return []
    return [f"{sum(waiting.values())} accepted item(s) were never routed: {dict(waiting)}"]


def _no_automatic_route_from_a_failure(rows: list[Any]) -> list[str]:
    # An automatic route must come from an answer of both models; a failed inference
    # (inference_error) or a route without the models' versions went to review or is a bug.
    broken = [
        row.id
        for row in rows
        if row.route not in (None, "review")
        and (row.inference_error or not row.detector_version or not row.classifier_version)
    ]
    if not broken:
        return []
    return [f"{len(broken)} item(s) got an automatic route without a model answer: {broken[:5]}"]


def _review_tasks(conn: Connection, key_prefix: str) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT i.id::text AS id, i.route, count(t.id) AS tasks FROM inspection i "
            "LEFT JOIN review_task t ON t.inspection_id = i.id "
            "WHERE i.idempotency_key LIKE :prefix AND i.status = 'routed' GROUP BY i.id, i.route"
        ),
        {"prefix": key_prefix + "%"},
    ).all()
    problems = []
    if twice := [row.id for row in rows if row.tasks > 1]:
        problems.append(f"{len(twice)} item(s) have more than one review task: {twice[:5]}")
    if none := [row.id for row in rows if row.route == "review" and row.tasks == 0]:
        problems.append(f"{len(none)} item(s) routed to review have no review task: {none[:5]}")
    if stray := [row.id for row in rows if row.route != "review" and row.tasks > 0]:
        problems.append(f"{len(stray)} automatically routed item(s) have a review task")
    return problems


def _nothing_recorded_twice(conn: Connection, key_prefix: str) -> list[str]:
    """A result recorded twice shows as the same box twice on one photo; a decision twice as
    two decisions that were not undone for one item."""
    regions = conn.scalar(
        text(
            "SELECT count(*) FROM (SELECT 1 FROM region r JOIN inspection i "
            "ON i.id = r.inspection_id WHERE i.idempotency_key LIKE :prefix "
            "GROUP BY r.inspection_id, r.photo_id, r.x1, r.y1, r.x2, r.y2 "
            "HAVING count(*) > 1) AS twice"
        ),
        {"prefix": key_prefix + "%"},
    )
    decisions = conn.scalar(
        text(
            "SELECT count(*) FROM (SELECT 1 FROM decision d JOIN inspection i "
            "ON i.id = d.inspection_id WHERE i.idempotency_key LIKE :prefix "
            "AND NOT EXISTS (SELECT 1 FROM decision_undo u WHERE u.decision_id = d.id) "
            "GROUP BY d.inspection_id HAVING count(*) > 1) AS twice"
        ),
        {"prefix": key_prefix + "%"},
    )
    problems = []
    if regions:
        problems.append(f"{regions} region(s) were recorded twice (a result stored twice)")
    if decisions:
        problems.append(f"{decisions} item(s) have two standing decisions")
    return problems
