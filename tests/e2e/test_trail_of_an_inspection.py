"""What an operator sees of one inspection on the whole stack (JSON logs, as the live stack
runs): one grep of its id finds its upload (web), its inference (worker and Serve) and its
decision (web), each carrying the upload's request id or the inspector's user id (Serve's
JSON lines are in Ray's log directory; its console copy is Ray's text, with both ids too);
and the web app's /metrics counts what the worker did, from the shared multiprocess
directory.

It runs after the simulation (its file name sorts last): its inspector confirms whatever
the queue holds until the item is decided.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from app.review.tables import Decision
from app.simulation.actors import Inspector, logged_in
from tests.support import garment_photo, wait_for

pytestmark = pytest.mark.e2e


def total(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    found = 0.0
    for match in re.finditer(rf"^{name}(?:\{{(.*)\}})? (\S+)$", text, re.MULTILINE):
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            found += float(match.group(2))
    return found


def lines_naming(log: str, inspection_id: str) -> dict[str, list[str]]:
    """Lines that name the inspection, by the child that wrote them ("web   | {...}")."""
    by_child: dict[str, list[str]] = {}
    for line in log.splitlines():
        child, sep, rest = line.partition(" | ")
        if sep and inspection_id in rest:
            by_child.setdefault(child.strip(), []).append(rest)
    return by_child


def entries(lines: list[str]) -> list[dict]:
    parsed = []
    for line in lines:
        start = line.find("{")  # Ray puts "(ServeReplica:... pid=N) " before its JSON
        try:
            parsed.append(json.loads(line[start:]))
        except ValueError:
            continue
    return parsed


def test_one_grep_of_an_inspection_id_follows_it_across_processes(live_stack):
    metrics_url = f"{live_stack.base_url}/metrics"
    before = httpx.get(metrics_url).text
    request_id = f"dock-{uuid.uuid4().hex[:12]}"
    sent = httpx.post(
        f"{live_stack.base_url}/api/v1/inspections",
        headers={"Authorization": f"Bearer {live_stack.station_token}", "X-Request-ID": request_id},
        files={"image": ("shirt.png", garment_photo(size=(320, 240), seed=515), "image/png")},
        timeout=30,
    )
    assert sent.status_code == 201, sent.text
    assert sent.headers["x-request-id"] == request_id
    inspection_id = sent.json()["id"]

    engine = create_engine(live_stack.database_url)
    session = logged_in(live_stack.base_url, "inspector", live_stack.password("inspector"))
    inspector = Inspector(session, "inspector", truths={}, error_rate=0.0, think_s=0.0)
    stop = threading.Event()
    working = threading.Thread(target=inspector.work, args=(stop,), daemon=True)
    working.start()

    def decided() -> int | None:
        with engine.connect() as conn:
            found = select(Decision.user_id).where(Decision.inspection_id == inspection_id)
            return conn.scalar(found)

    try:
        user_id = wait_for(decided, timeout=180, every=0.5)
    finally:
        stop.set()
        working.join(timeout=30)
        engine.dispose()
    assert inspector.errors == []

    after = httpx.get(metrics_url).text
    assert total(after, "loupe_uploads_total", outcome="created") >= total(
        before, "loupe_uploads_total", outcome="created") + 1  # fmt: skip
    # Counted by the worker, read through the web app: the shared multiprocess directory.
    assert total(after, "loupe_routes_total", kind="review") > total(
        before, "loupe_routes_total", kind="review")  # fmt: skip
    stage = {"stage": "total", "arm": "champion"}
    assert total(after, "loupe_inference_stage_seconds_count", **stage) > total(
        before, "loupe_inference_stage_seconds_count", **stage)  # fmt: skip
    assert total(after, "loupe_decisions_total") > total(before, "loupe_decisions_total")
    assert "loupe_review_queue_items" in after and "loupe_model_in_service" in after

    def trail() -> dict[str, list]:
        """Each process's lines about the item that carry the right ids."""
        found = lines_naming(live_stack.log_path.read_text(errors="replace"), inspection_id)
        by_child = {child: entries(lines) for child, lines in found.items()}
        web, worker = by_child.get("web", []), by_child.get("worker", [])
        return {
            "upload": [e for e in web if e.get("request_id") == request_id],
            "decision": [e for e in web if e.get("user_id") == user_id
                         and e.get("inspection_id") == inspection_id],
            "inference": [e for e in worker if e.get("request_id") == request_id
                          and e.get("inspection_id") == inspection_id],
            # Serve's console copy is Ray's text ("... <request id> -- inspection <id>: ..."),
            # whatever the encoding; its JSON lines go to Ray's log directory (below).
            "serve": [line for line in found.get("serve", []) if request_id in line],
        }  # fmt: skip

    try:  # Serve's lines reach the log through Ray's log monitor, a moment late
        wait_for(lambda: all(trail().values()), timeout=30, every=0.5)
    except AssertionError:
        found = lines_naming(live_stack.log_path.read_text(errors="replace"), inspection_id)
        missing = [step for step, lines in trail().items() if not lines]
        pytest.fail(f"no line for {missing} with the ids; the lines naming the item: {found}")
    assert any("routed review" in e["message"] for e in trail()["inference"])
    serve_json = [e for e in entries(serve_log_lines(inspection_id)) if "inspection_id" in e]
    assert serve_json, "no JSON line in Serve's replica logs names the item"
    assert {(e["inspection_id"], e["request_id"]) for e in serve_json} == {
        (inspection_id, request_id)
    }


def serve_log_lines(inspection_id: str) -> list[str]:
    """Lines naming the item in the Ingress replicas' log files (Ray's default directory:
    the stack sets no other), which Serve writes in JSON under LOUPE_LOG_FORMAT=json."""
    lines = []
    for path in Path(tempfile.gettempdir()).glob("ray/session_*/logs/serve/replica_*Ingress*.log"):
        lines += [line for line in path.read_text(errors="replace").splitlines()
                  if inspection_id in line]  # fmt: skip
    return lines
