"""How long the weekly report and the ML dashboard take with a year of decisions (issue 5).

Issue 5: "with 1,000,000 decisions in the database, the weekly report and the dashboard
page each take under 300 ms". This makes a fresh migrated database, seeds a year of data
ending now set-based in SQL (generate_series, setseed + random(); rows in time order, as
production appends them), VACUUM ANALYZEs it (what autovacuum does to insert-only
tables), then times `weekly_report` live for the last closed and the current week, the
dashboard before any week is stored (12 live reports: right after installing), beat's
`snapshot_closed_weeks` once, then the JSON API and the dashboard with stored weeks, and
each query of one live report on its own (where the time goes). The HTTP rows go through
the real app in-process (fastapi TestClient, logged in as an `ml` user: routing, auth,
session, templates, no network). Figures: median and max of `--repeat` runs after a
warm-up, in ms; a median over 300 ms says MISS.

    .venv/bin/python bench/dashboard_report.py                   # embedded PostgreSQL
    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \
        .venv/bin/python bench/dashboard_report.py [--decisions 1000000] [--keep]

Each decision is a review item: inspection (route review, ~2 % audits), one photo, one
model region, its decided review_task (whose decision_id is the decision: in effect), one
decision_region (confirmed 70 %, changed type 6 %, changed severity 6 %, not a defect
18 %), a drawn box for ~5 % (added), and the error_case rows app.feedback.capture would
derive; the model agrees with the verdict ~80 % (audits 95 %). `--auto-per-review`
automatically routed inspections per decision (no photos) make the routing mix's table
realistic; ~0.3 % more items are still open, created in the last 7 days.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_decide import CSRF, database  # noqa: E402

TARGET_MS = 300.0
PASSWORD = "bench-password-1"
SLA = 4 * 3600
TABLES = ("user", "inspection", "photo", "region", "review_task", "decision",
          "decision_region", "error_case", "weekly_report")  # fmt: skip
TAGS = ["shadow", "lighting", "print", "lint", "white_fabric"]
DETECTORS = ["rtdetr-2025.12", "rtdetr-2026.04", "rtdetr-2026.08"]  # a third of the year each
CLASSIFIERS = ["qwen25vl-2026.01", "qwen25vl-2026.06"]  # a half each, with its prompts
PROMPTS = ["v1", "v2"]
SEVERITIES = ["minor", "moderate", "severe"]
UUID = "('00000000-0000-4000-{0}000-' || lpad(to_hex({1}), 12, '0'))::uuid"  # 8: review, 9: auto
TY, SV, TG, DT, CL, PR = (f"(CAST(:{n} AS text[]))" for n in
                          ("types", "sevs", "tags", "dets", "clss", "prompts"))  # fmt: skip

ITEMS = f"""
CREATE TEMP TABLE item AS
SELECT row_number() OVER (ORDER BY at) AS k, l1.*,
  CASE WHEN nomodel AND NOT audit THEN NULL WHEN agree < CASE WHEN audit THEN 0.95 ELSE 0.8 END
       THEN verdict WHEN verdict = 'pass' THEN 'reject' ELSE 'pass' END AS model_verdict,
  {DT}[1 + floor(3 * ph)::int] AS det, {CL}[1 + floor(2 * ph)::int] AS cls,
  {PR}[1 + floor(2 * ph)::int] AS prm,
  CASE WHEN tagroll < 0.85 THEN '{{}}'::text[] WHEN tagroll < 0.97 THEN ARRAY[{TG}[tag1]]
       ELSE ARRAY[{TG}[tag1], {TG}[tag1 % 5 + 1]] END AS tags
FROM (
  SELECT l0.*, at - wait_s * interval '1 second' AS routed,
    least(0.9999, greatest(0.0, extract(epoch FROM at - :start) / :span)) AS ph,
    CASE WHEN o < 0.70 THEN 'confirmed' WHEN o < 0.82 THEN 'changed' ELSE 'not_defect' END
      AS outcome,
    CASE WHEN o < 0.70 OR o >= 0.76 AND o < 0.82 THEN mtype
         WHEN o < 0.76 THEN (mtype + 1 + alt_r) % :ntypes END AS htype,
    CASE WHEN o < 0.76 THEN msev WHEN o < 0.82 THEN (msev + 1 + alt_s) % 3 END AS hsev,
    CASE WHEN added THEN 'reject' WHEN o >= 0.82 THEN 'pass'
         WHEN (CASE WHEN o < 0.76 THEN msev ELSE (msev + 1 + alt_s) % 3 END) = 0 AND pass_minor
         THEN 'pass' ELSE 'reject' END AS verdict
  FROM (
    SELECT g > :n AS open,
      :now - interval '1 day' * (CASE WHEN g > :n THEN 7 ELSE 364 END) * random() AS at,
      CASE WHEN g > :n THEN 0 ELSE -ln(1 - random()) * 5400 END AS wait_s,
      1 + floor(40 * random())::int AS user_id, random() < 0.02 AS audit,
      floor(:ntypes * power(random(), 1.5))::int AS mtype,
      floor(3 * power(random(), 1.3))::int AS msev, random() AS o,
      floor((:ntypes - 1) * random())::int AS alt_r, floor(2 * random())::int AS alt_s,
      random() < 0.05 AS added, floor(:ntypes * random())::int AS add_type,
      floor(3 * random())::int AS add_sev, random() < 0.4 AS pass_minor, random() AS agree,
      random() < 0.01 AS nomodel, random() AS tagroll, 1 + floor(5 * random())::int AS tag1,
      0.5 + 0.45 * random() AS conf, 1000 * random() AS x, 700 * random() AS y
    FROM generate_series(1, :n + :open) g
  ) l0
) l1"""

INSPECTIONS = f"""
INSERT INTO inspection (id, station, status, route, route_reason, verdict, confidence,
  is_audit, detector_version, classifier_version, prompt_version, arm, created_at, routed_at,
  status_changed_at)
SELECT id, 'bench', 'routed', route, reason, verdict, conf, audit, det, cls, prm, 'champion',
       t - interval '15 seconds', t, t
FROM (
  SELECT {UUID.format(8, "k")} AS id, 'review' AS route,
         CASE WHEN audit THEN 'confident' ELSE 'uncertain' END AS reason,
         CASE WHEN open THEN NULL ELSE verdict END AS verdict, conf, audit, det, cls, prm,
         routed AS t FROM item
  UNION ALL
  SELECT {UUID.format(9, "j")}, CASE WHEN r < 0.85 THEN 'auto_pass' ELSE 'auto_reject' END,
         CASE WHEN r < 0.6 THEN 'no_defect' ELSE 'confident' END,
         CASE WHEN r < 0.85 THEN 'pass' ELSE 'reject' END,
         CASE WHEN r < 0.6 THEN NULL ELSE 0.9 + r / 10 END, false,
         {DT}[1 + floor(3 * ph)::int], {CL}[1 + floor(2 * ph)::int], {PR}[1 + floor(2 * ph)::int], t
  FROM (SELECT row_number() OVER (ORDER BY t) AS j, t, r,
               least(0.9999, greatest(0.0, extract(epoch FROM t - :start) / :span)) AS ph
        FROM (SELECT :now - interval '364 days' * random() AS t, random() AS r
              FROM generate_series(1, :auto)) s) a
) u ORDER BY t"""

SEED = [
    ("inspectors", """INSERT INTO "user" (id, username, password_hash, role, language,
        is_active, created_at) SELECT g, 'inspector-' || lpad(g::text, 2, '0'), '!',
        'inspector', 'en', true, :start FROM generate_series(1, 40) g"""),
    ("items (staging)", ITEMS),
    ("inspections", INSPECTIONS),
    ("photos", f"""INSERT INTO photo (id, inspection_id, position, view, object_key,
        content_hash, content_type, size_bytes, width, height, created_at)
        SELECT k, {UUID.format(8, "k")}, 0, 'front', 'bench/' || k || '.jpg', repeat('0', 64),
        'image/jpeg', 250000, 1280, 960, routed FROM item ORDER BY k"""),
    ("regions", f"""INSERT INTO region (id, inspection_id, photo_id, x1, y1, x2, y2,
        detector_score, defect_type, severity, confidence, reason, evidence, created_at)
        SELECT k, {UUID.format(8, "k")}, k, x, y, x + 120, y + 90, 0.9, {TY}[mtype + 1],
        {SV}[msev + 1], conf, '', '{{}}', routed FROM item ORDER BY k"""),
    ("review tasks", f"""INSERT INTO review_task (id, inspection_id, reason, is_audit,
        confidence, severity_rank, priority_key, created_at, due_at, claimed_at, attempt,
        decided_at, decision_id)
        SELECT k, {UUID.format(8, "k")}, CASE WHEN audit THEN 'audit' ELSE 'uncertain' END,
        audit, conf, msev + 1, round(conf * 100) + floor(extract(epoch FROM routed) * 100 / :sla),
        routed, routed + :sla * interval '1 second',
        CASE WHEN NOT open THEN at - interval '40 seconds' END, CASE WHEN open THEN 0 ELSE 1 END,
        CASE WHEN NOT open THEN at END, CASE WHEN NOT open THEN k END FROM item ORDER BY k"""),
    ("decisions", f"""INSERT INTO decision (id, review_task_id, inspection_id, user_id, verdict,
        note, tags, attempt, model_verdict, is_audit, detector_version, classifier_version,
        prompt_version, created_at)
        SELECT k, k, {UUID.format(8, "k")}, user_id, verdict, '', tags, 1, model_verdict, audit,
        det, cls, prm, at FROM item WHERE NOT open ORDER BY k"""),
    ("decision regions", f"""INSERT INTO decision_region (id, decision_id, region_id, photo_id,
        x1, y1, x2, y2, defect_type, severity, outcome)
        SELECT id, k, region_id, k, bx, y, bx + 120, y + 90, dtype, sev, outcome FROM (
          SELECT k, k AS id, k AS region_id, x AS bx, y, coalesce({TY}[htype + 1], 'normal'),
                 {SV}[hsev + 1], outcome FROM item WHERE NOT open
          UNION ALL
          SELECT k, :n + :open + k, NULL, CASE WHEN x < 500 THEN x + 400 ELSE x - 400 END, y,
                 {TY}[add_type + 1], {SV}[add_sev + 1], 'added'
          FROM item WHERE added AND NOT open
        ) AS d(k, id, region_id, bx, y, dtype, sev, outcome) ORDER BY k, id"""),
    ("error cases", f"""INSERT INTO error_case (id, decision_id, inspection_id, kind, scope,
        region_id, photo_id, x1, y1, x2, y2, model_label, human_label, field, from_value,
        to_value, tags, is_audit, detector_version, classifier_version, prompt_version,
        decided_at)
        SELECT row_number() OVER (ORDER BY k, sub), k, {UUID.format(8, "k")}, kind, scope,
        region_id, photo_id, bx, by1, bx + bw, by1 + bh, model_label, human_label, field,
        from_value, to_value, tags, audit, det, cls, prm, at FROM (
          SELECT i.*, c.* FROM item i CROSS JOIN LATERAL (VALUES
            (1, outcome = 'not_defect', 'false_positive', 'region', k, k, x, y, 120, 90,
             {TY}[mtype + 1], 'normal', NULL, {TY}[mtype + 1], 'normal'),
            (2, outcome = 'changed' AND htype <> mtype, 'classification_error', 'region', k, k,
             x, y, 120, 90, {TY}[mtype + 1], {TY}[htype + 1], 'type', {TY}[mtype + 1],
             {TY}[htype + 1]),
            (3, outcome = 'changed' AND htype = mtype, 'classification_error', 'region', k, k,
             x, y, 120, 90, {TY}[mtype + 1], {TY}[mtype + 1], 'severity', {SV}[msev + 1],
             {SV}[hsev + 1]),
            (4, added, 'false_negative', 'region', NULL, k,
             CASE WHEN x < 500 THEN x + 400 ELSE x - 400 END, y, 120, 90, NULL,
             {TY}[add_type + 1], NULL, NULL, {TY}[add_type + 1]),
            (5, model_verdict IS DISTINCT FROM verdict AND model_verdict IS NOT NULL,
             CASE WHEN verdict = 'reject' THEN 'false_negative' ELSE 'false_positive' END, 'item',
             NULL, NULL, NULL, NULL, NULL, NULL, model_verdict, verdict, NULL, model_verdict,
             verdict)
          ) AS c(sub, keep, kind, scope, region_id, photo_id, bx, by1, bw, bh, model_label,
                 human_label, field, from_value, to_value)
          WHERE keep AND NOT open) e ORDER BY k, sub"""),
]  # fmt: skip


def seed(url: str, *, decisions: int, auto_per_review: int, seed_value: float = 0.42) -> None:
    """The year of data, set-based; prints each step's time and the row counts."""
    from app.db import utcnow

    types = [t["key"] for t in json.loads((ROOT / "models/taxonomy.json").read_text())
             ["defect_types"] if t["key"] != "normal"]  # fmt: skip
    now = utcnow()
    params = {
        "n": decisions, "open": max(1, decisions * 3 // 1000), "auto": decisions * auto_per_review,
        "now": now, "start": now - timedelta(days=364), "span": 364 * 86400.0, "sla": SLA,
        "types": types, "ntypes": len(types), "sevs": SEVERITIES, "tags": TAGS,
        "dets": DETECTORS, "clss": CLASSIFIERS, "prompts": PROMPTS,
    }  # fmt: skip
    engine = create_engine(url, poolclass=NullPool)
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("SET work_mem = '256MB'"))
        if conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
            # Foreign-key triggers off while loading: the rows are consistent by construction.
            conn.execute(text("SET session_replication_role = replica"))
        conn.execute(text("SELECT setseed(:s)"), {"s": seed_value})
        for label, sql in SEED:
            step = time.perf_counter()
            conn.execute(text(sql), params)
            conn.commit()
            print(f"  {label:<18} {time.perf_counter() - step:7.1f} s", flush=True)
        for table in ("user", "photo", "region", "review_task", "decision", "decision_region",
                      "error_case"):  # fmt: skip
            sequence = f"pg_get_serial_sequence('\"{table}\"', 'id')"
            conn.execute(text(f'SELECT setval({sequence}, (SELECT max(id) FROM "{table}"))'))
        conn.execute(text("DROP TABLE item"))
        conn.commit()
    step = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        print(f"  {'VACUUM ANALYZE':<18} {time.perf_counter() - step:7.1f} s")
        print(f"seeded in {time.perf_counter() - started:.0f} s; rows:")
        for table in TABLES:
            count = conn.scalar(text(f'SELECT count(*) FROM "{table}"'))
            print(f"  {table:<16} {count:>10,}")
    engine.dispose()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, max) in ms of `repeat` calls after one warm-up."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def row(label: str, median: float, worst: float | None = None, target: bool = True) -> None:
    mark = ("ok" if median < TARGET_MS else "MISS") if target else "-"
    worst_text = f"{worst:8.0f}" if worst is not None else f"{'':>8}"
    print(f"  {label:<58} {median:8.0f} {worst_text}   {mark}", flush=True)


def measure(url: str, storage: str, repeat: int) -> None:
    os.environ.update(LOUPE_DATABASE_URL=url, LOUPE_SECRET_KEY="bench-secret-key",
                      LOUPE_ENVIRONMENT="development", LOUPE_STORAGE_DIR=storage)  # fmt: skip
    from fastapi.testclient import TestClient

    from app.auth.service import create_user
    from app.config import get_settings
    from app.dashboard import report as r
    from app.dashboard.snapshots import report_options, snapshot_closed_weeks
    from app.dashboard.weeks import Week
    from app.db import get_engine, session_scope, utcnow
    from app.web import create_app
    from tests.support import reset_caches

    reset_caches()
    settings, options = get_settings(), report_options(get_settings())
    engine = get_engine()
    with session_scope() as session:
        create_user(session=session, username="bench-ml", password=PASSWORD, role="ml")
    client = TestClient(create_app(), follow_redirects=False)
    token = CSRF.search(client.get("/login").text).group(1)
    form = {"username": "bench-ml", "password": PASSWORD, "csrf_token": token, "next": "/"}
    assert client.post("/login", data=form).status_code == 303, "login failed"

    current = Week.of(utcnow(), settings.site_timezone)
    last = current.shifted(-1)

    def get(path: str) -> Callable[[], object]:
        return lambda: client.get(path).raise_for_status()  # a redirect to /login raises too

    def query(fn: Callable[[Session], object]) -> Callable[[], object]:
        def call() -> object:
            with Session(engine) as session:
                return fn(session)

        return call

    def live(week: Week) -> Callable[[], object]:
        return query(lambda s: r.weekly_report(session=s, week=week, options=options, now=utcnow()))

    print(f"\nmedian and max of {repeat} runs after a warm-up, ms; target {TARGET_MS:.0f} ms")
    print(f"  {'':<58} {'median':>8} {'max':>8}")
    row(f"GET /dashboard, NOTHING STORED YET (12 live weeks, {last})",
        *timed(get("/dashboard"), repeat))  # fmt: skip
    row(f"weekly_report, last closed week {last}, live", *timed(live(last), repeat))
    row(f"weekly_report, current week {current}, live", *timed(live(current), repeat))
    with session_scope() as session:
        started = time.perf_counter()
        written = snapshot_closed_weeks(session=session, options=options, now=utcnow(),
                                        weeks_back=12)  # fmt: skip
        row(f"snapshot_closed_weeks(weeks_back=12), once: {len(written)} weeks written",
            (time.perf_counter() - started) * 1000, target=False)  # fmt: skip
    row(f"GET /api/v1/reports/weekly?week={last} (stored)",
        *timed(get(f"/api/v1/reports/weekly?week={last}"), repeat))  # fmt: skip
    row(f"GET /api/v1/reports/weekly?week={current} (live)",
        *timed(get(f"/api/v1/reports/weekly?week={current}"), repeat))  # fmt: skip
    row("GET /dashboard (last closed week: 12 stored)", *timed(get("/dashboard"), repeat))
    row(f"GET /dashboard?week={current} (11 stored + 1 live)",
        *timed(get(f"/dashboard?week={current}"), repeat))  # fmt: skip

    report = live(last)()
    start, end = last.bounds(settings.site_timezone)
    totals = query(lambda s: r._decision_totals(s, start, end))()
    names = ("_decision_totals", "_errors", "_confusion", "_routing_mix", "_inspectors",
             "_versions")  # fmt: skip
    functions = {name: getattr(r, name) for name in names}
    parts = {name: lambda s, f=f: f(s, start, end) for name, f in functions.items()}
    parts["_patterns"] = lambda s: r._patterns(s, start, end, options)
    parts["_queue"] = lambda s: r._queue(s, start, end, totals, options.sla_seconds)
    print(f"\none live report ({last}) query by query, slowest first, ms")
    results = [(name, *timed(query(part), repeat)) for name, part in parts.items()]
    for name, median, worst in sorted(results, key=lambda x: -x[1]):
        row(f"app.dashboard.report.{name}", median, worst, target=False)
    print(f"  {'sum of medians':<58} {sum(x[1] for x in results):8.0f}")
    mix = report["routing_mix"]
    print(f"\n{last}: {report['total_reviews']:,} reviews ({report['audited_reviews']:,} "
          f"audits), agreement {report['ai_human_agreement']:.1%}, {mix['total']:,} routed "
          f"({mix['automatic_share']:.0%} automatic), region errors {report['error_breakdown']}, "
          f"item errors {report['item_errors']}, backlog {report['queue']['backlog']}")  # fmt: skip
    reset_caches()


@contextmanager
def kept_database(server_url: str):
    from app.embedded import ensure_database, migrate

    url = ensure_database(server_url, f"loupe_bench_{uuid.uuid4().hex[:8]}")
    migrate(url, configure_logging=False)
    yield url
    print(f"\nkept the database: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--auto-per-review", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database; print its URL")
    args = parser.parse_args()
    server_url = os.environ.get("LOUPE_DATABASE_URL")
    if args.keep and server_url is None:
        parser.error("--keep needs LOUPE_DATABASE_URL (the embedded server stops at exit)")
    made = kept_database(server_url) if args.keep else database(server_url)
    with made as url, tempfile.TemporaryDirectory() as storage:
        print(f"seeding {args.decisions:,} decisions, {args.auto_per_review} automatic "
              f"inspections per decision ...", flush=True)  # fmt: skip
        seed(url, decisions=args.decisions, auto_per_review=args.auto_per_review)
        measure(url, storage, args.repeat)


if __name__ == "__main__":
    main()
