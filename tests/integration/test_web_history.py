"""The inspection history pages on a real PostgreSQL: search, pages, refusals, one record.

Leads and the ML team search every inspection (external id, station, route, verdict, days
at the site) newest first, a page at a time, and open one inspection's record: its photos
and boxes, the models' answers, the route and why, model versions, and every decision in
order with the undo and re-review around them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.auth.tables import AuditEvent
from app.i18n import catalogues
from app.inspections import history
from app.inspections.tables import Inspection, Region
from app.review import decisions, reopen
from app.review.tables import Decision
from tests.integration import web_support
from tests.integration.review_support import make_review_item, make_user
from tests.integration.web_support import HTMX, add_user, log_in, stored_item

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture
MARCH = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def inspection(session, *, at: datetime, route: str | None, verdict: str | None = None,
               external_id: str | None = None, station: str = "dock-1",
               is_audit: bool = False) -> Inspection:  # fmt: skip
    """An inspection the models routed automatically (or not yet, with route None)."""
    row = Inspection(
        station=station, external_id=external_id, created_at=at, route=route, verdict=verdict,
        status="routed" if route else "queued", route_reason="confident" if route else None,
        routed_at=at + timedelta(seconds=5) if route else None, is_audit=is_audit,
    )  # fmt: skip
    session.add(row)
    session.commit()
    return row


def shown(html: str) -> list[str]:
    """The inspections in the results, in page order."""
    return re.findall(r'<tr data-inspection="([0-9a-f-]+)"', html)


def lead_client(make_app, db_session, language: str = "en", **settings):
    add_user(db_session, role="lead", language=language, name=f"lead-{language}")
    client = make_app(**settings)
    log_in(client, f"lead-{language}")
    return client


@pytest.fixture
def garments(db_session):
    """Four garments over four days: two reviewed at dock-1, an automatic pass at a camera of
    dock-2, and one the models have not seen yet."""
    decided = make_review_item(db_session, external_id="RMA-100", created_at=MARCH)
    decisions.decide(session=db_session, task_id=decided.id,
                     user_id=make_user(db_session, name="mina").id, verdict="reject",
                     now=MARCH + timedelta(hours=1))  # fmt: skip
    queued = make_review_item(db_session, external_id="RMA-101",
                              created_at=MARCH + timedelta(days=1))  # fmt: skip
    auto = inspection(db_session, at=MARCH + timedelta(days=2), route="auto_pass", verdict="pass",
                      external_id="XB-7", station="dock-2/cam-1", is_audit=True)  # fmt: skip
    new = inspection(db_session, at=MARCH + timedelta(days=3), route=None)
    return {"decided": decided.inspection_id, "queued": queued.inspection_id,
            "auto": auto.id, "new": new.id}  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["new", "auto", "queued", "decided"]),  # newest first
        ("external_id=RMA-10", ["queued", "decided"]),  # the start of an id, any case
        ("external_id=rma-100", ["decided"]),
        ("external_id=RMA-1%25", []),  # % is a character here, not a wildcard
        ("station=dock-2", ["auto"]),  # a station and its cameras
        ("station=dock-2/cam-1", ["auto"]),
        ("station=dock", []),
        ("route=review", ["queued", "decided"]),
        ("route=auto_pass", ["auto"]),
        ("route=audit", ["auto"]),
        ("route=pending", ["new"]),
        ("verdict=reject", ["decided"]),
        ("verdict=pass", ["auto"]),
        ("verdict=undecided", ["new", "queued"]),
        ("from=2026-03-11&to=2026-03-12", ["auto", "queued"]),
        ("to=2026-03-10", ["decided"]),
        ("route=review&verdict=undecided&station=dock-1", ["queued"]),
    ],
)
def test_search_filters(make_app, db_session, garments, query, expected):
    client = lead_client(make_app, db_session)
    response = client.get(f"/inspections?{query}")
    assert response.status_code == 200
    assert shown(response.text) == [str(garments[name]) for name in expected]


def test_days_are_the_sites_days(make_app, db_session):
    # 16:30 UTC on 10 March is 01:30 on 11 March in Seoul: it belongs to the 11th there.
    late = inspection(db_session, at=datetime(2026, 3, 10, 16, 30, tzinfo=UTC), route=None)
    client = lead_client(make_app, db_session, site_timezone="Asia/Seoul")
    assert shown(client.get("/inspections?from=2026-03-11&to=2026-03-11").text) == [str(late.id)]
    assert shown(client.get("/inspections?to=2026-03-10").text) == []
    page = client.get(f"/inspections/{late.id}").text
    assert "2026-03-11 01:30:00" in page and "Asia/Seoul" in page


def test_results_come_a_bounded_page_at_a_time_without_gaps_or_repeats(make_app, db_session):
    # Three arrive in the same microsecond: the id breaks the tie, so none is lost between pages.
    times = [MARCH + timedelta(minutes=m) for m in (0, 1, 1, 1, 2, 3, 4)]
    made = [inspection(db_session, at=at, route=None).id for at in times]
    client = lead_client(make_app, db_session)
    seen, urls = [], ["/inspections?route=pending&limit=3"]
    while urls[-1]:
        page = client.get(urls[-1])
        assert page.status_code == 200
        seen += shown(page.text)
        assert ("Newest" in page.text) is (len(urls) > 1)  # back to the start from page 2 on
        found = re.search(r'rel="next" href="([^"]+)"', page.text)
        urls.append(found.group(1).replace("&amp;", "&") if found else None)
    assert len(urls) == 4 and all("route=pending&limit=3" in u for u in urls[1:-1])
    assert len(seen) == len(set(seen)) == 7
    newest_first = sorted(zip(times, made, strict=True), reverse=True)
    assert seen == [str(i) for _, i in newest_first]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2026-13-01", 'From: "2026-13-01" is not a date. Write it as YYYY-MM-DD'),
        ("to=yesterday", 'To: "yesterday" is not a date.'),
        ("from=20260301", "is not a date"),  # the page speaks YYYY-MM-DD only
        ("from=2026-03-12&to=2026-03-11", "the last day (2026-03-11) is before the first day"),
        ("route=sideways", 'Route: "sideways" is not one of the choices (auto_pass, auto_'),
        ("verdict=maybe", 'Verdict: "maybe" is not one of the choices'),
        ("limit=0", 'Page size: "0" is not a whole number from 1 to 200.'),
        ("limit=5000", "from 1 to 200"),
        ("limit=ten", "from 1 to 200"),
        ("external_id=" + "x" * 201, "External id: at most 200 characters"),
        ("station=" + "s" * 101, "Station: at most 100 characters"),
        ("after=not-a-cursor", "this link to a page of results is not valid any more"),
    ],
)
def test_bad_filters_get_a_400_that_says_what_is_wrong(make_app, db_session, query, words):
    client = lead_client(make_app, db_session)
    response = client.get(f"/inspections?{query}")
    assert response.status_code == 400
    text = response.text.replace("&#34;", '"').replace("&quot;", '"')
    assert words in text
    assert '<form method="get" action="/inspections"' in text  # the form, to correct it
    assert 'aria-invalid="true"' in text or "after" in query or "limit" in query


def test_htmx_gets_the_results_alone_and_a_bad_filter_loads_the_whole_page(make_app, db_session,
                                                                           garments):  # fmt: skip
    client = lead_client(make_app, db_session)
    # The form sends every field; the address bar gets the filters in use.
    fragment = client.get("/inspections?external_id=&station=&route=review&from=", headers=HTMX)
    assert fragment.status_code == 200 and "Vary" in fragment.headers
    assert fragment.headers["HX-Push-Url"] == "/inspections?route=review"
    assert fragment.text.lstrip().startswith('<section class="card-wide" id="results">')
    assert "<html" not in fragment.text and len(shown(fragment.text)) == 2
    # htmx swaps no 4xx: it is sent to the same address, which shows the form and the message.
    refused = client.get("/inspections?from=2026-02-30", headers=HTMX)
    assert refused.status_code == 400
    assert refused.headers["HX-Redirect"] == "/inspections?from=2026-02-30"


def test_korean_page(make_app, db_session, garments):
    client = lead_client(make_app, db_session, language="ko")
    page = client.get("/inspections").text
    for korean in ("검사 이력", "외부 ID", "처리 경로", "자동 통과", "아직 판정되지 않음", "검색"):
        assert korean in page, korean
    assert 'lang="ko"' in page
    refused = client.get("/inspections?from=2026-99-01")
    assert "YYYY-MM-DD 형식으로 입력해 주세요" in refused.text
    record = client.get(f"/inspections/{garments['decided']}").text
    for korean in ("판정 1", "모델 버전", "처리 이력", "불합격", "모델이 찾은 영역"):
        assert korean in record, korean


def test_inspectors_are_refused_and_the_nav_links_it_for_those_who_may(make_app, db_session):
    item = inspection(db_session, at=MARCH, route=None)
    for role, allowed in (("inspector", False), ("lead", True), ("ml", True), ("admin", True)):
        add_user(db_session, role=role, name=f"who-{role}")
        client = make_app()
        log_in(client, f"who-{role}")
        for path in ("/inspections", f"/inspections/{item.id}"):
            assert client.get(path).status_code == (200 if allowed else 403), (role, path)
        home = client.get("/review/keys" if role == "inspector" else "/inspections").text
        assert ('href="/inspections"' in home) is allowed, role
    assert make_app().get("/inspections").headers["location"].startswith("/login")


def test_an_unknown_or_malformed_inspection_id(make_app, db_session):
    client = lead_client(make_app, db_session)
    assert client.get(f"/inspections/{uuid.uuid4()}").status_code == 404
    assert client.get("/inspections/not-an-id").status_code == 400


def _decided_three_times(db_session):
    """A garment with two photos decided, undone, decided again, sent back by a lead and
    re-reviewed by someone else: every kind of decision the history has to show."""
    task = stored_item(db_session, name="history", external_id="RMA-<b>7</b>", photos=2,
                       region_reason='<script>alert("model")</script> brown mark',
                       created_at=MARCH)  # fmt: skip
    mina, joon = make_user(db_session, name="mina"), make_user(db_session, name="joon")
    lead = make_user(db_session, role="lead", name="sora")
    first_region = db_session.scalar(select(Region).order_by(Region.id))
    decided = decisions.decide(session=db_session, task_id=task.id, user_id=mina.id,
                               verdict="pass", now=MARCH + timedelta(minutes=1))  # fmt: skip
    reopen.undo(session=db_session, decision_id=decided.id, user_id=mina.id,
                   window_seconds=30, lease_seconds=60,
                   now=MARCH + timedelta(minutes=1, seconds=10))  # fmt: skip
    edits = [{"region": first_region.id, "type": "hole", "severity": "severe"},
             {"photo": first_region.photo_id, "box": [200, 150, 260, 200], "type": "tear",
              "severity": "minor"}]  # fmt: skip
    decisions.decide(session=db_session, task_id=task.id, user_id=mina.id, verdict="reject",
                     region_edits=edits, tags=["print"], note="<i>hole</i> by the seam",
                     now=MARCH + timedelta(minutes=2))  # fmt: skip
    reopen.send_back(session=db_session, task_id=task.id, actor_id=lead.id,
                        now=MARCH + timedelta(minutes=30))  # fmt: skip
    decisions.decide(session=db_session, task_id=task.id, user_id=joon.id, verdict="pass",
                     now=MARCH + timedelta(minutes=40))  # fmt: skip
    return task


def test_the_record_shows_every_decision_in_order_with_who_and_when(make_app, db_session):
    task = _decided_three_times(db_session)
    client = lead_client(make_app, db_session)
    page = client.get(f"/inspections/{task.inspection_id}")
    assert page.status_code == 200
    html = page.text
    states = re.findall(r'<article class="decision state-(\w+)" id="decision-(\d)"', html)
    assert states == [("undone", "1"), ("superseded", "2"), ("in_effect", "3")]
    first, second, third = re.split(r'<article class="decision', html)[1:4]
    assert "mina" in first and "2026-03-10 09:01:00" in first
    assert "Undone by mina at 2026-03-10 09:01:10" in first
    assert "mina" in second and "Reject" in second and "The models proposed: Reject" in second
    assert "the inspector decided otherwise" not in second
    assert 'data-outcome="changed"' in second and 'data-outcome="added"' in second
    assert "Drawn on photo 1" in second and "Hole" in second
    assert "Where the inspector and the models differ" in second and "Print" in second
    assert "joon" in third and "A re-review: replaces decision 2" in third
    assert "Pass" in third and "the inspector decided otherwise" in third
    events = re.findall(r'<tr data-event="(\w+)">', html)
    assert events == ["received", "queued", "decided", "undone", "decided", "sent_back",
                      "decided"]  # fmt: skip
    sent_back = html.split('<tr data-event="sent_back">')[1].split("</tr>")[0]
    assert "2026-03-10 09:30:00" in sent_back and "sora" in sent_back


def test_the_record_shows_photos_boxes_route_models_and_escapes_what_people_and_models_wrote(
    make_app, db_session
):
    task = _decided_three_times(db_session)
    db_session.execute(update(Inspection).where(Inspection.id == task.inspection_id)
                       .values(inference_error="<img src=x onerror=alert(1)>"))  # fmt: skip
    db_session.commit()
    html = lead_client(make_app, db_session).get(f"/inspections/{task.inspection_id}").text
    photos = db_session.get(Inspection, task.inspection_id).photos
    assert all(f'<image href="/photos/{p.id}"' in html for p in photos) and len(photos) == 2
    assert html.count('<g class="box c') == 2  # one model region per photo, drawn as on review
    assert "det-test-1" in html and "cls-test-1" in html and "v-test" in html
    assert "Human review" in html and "The models were not sure enough" in html
    # Escaped, every one: the external id, the model's reason, the note, the error.
    for raw in ("<b>7</b>", '<script>alert("model")', "<i>hole</i>", "<img src=x"):
        assert raw not in html, raw
    assert "RMA-&lt;b&gt;7&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(&#34;model&#34;)&lt;/script&gt; brown mark" in html
    assert "&lt;i&gt;hole&lt;/i&gt; by the seam" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    listing = lead_client(make_app, db_session, language="ko").get("/inspections").text
    assert "<b>7</b>" not in listing and "RMA-&lt;b&gt;7&lt;/b&gt;" in listing


def test_an_imported_label_is_nobodys_decision(make_app, db_session):
    task = _decided_three_times(db_session)
    # app.imports records labels without a person; the page must still show the record.
    db_session.execute(update(Decision).where(Decision.review_task_id == task.id)
                       .values(user_id=None))  # fmt: skip
    db_session.execute(update(Inspection).where(Inspection.id == task.inspection_id)
                       .values(source="import:coco-2025"))  # fmt: skip
    db_session.commit()
    html = lead_client(make_app, db_session).get(f"/inspections/{task.inspection_id}").text
    assert html.count("imported label (import:coco-2025)") == 3


def test_search_answers_in_few_queries_whatever_the_page_size(db_session):
    for n in range(12):
        make_review_item(db_session, created_at=MARCH + timedelta(minutes=n))
    from sqlalchemy import event

    statements: list[str] = []
    engine = db_session.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        page = history.search(session=db_session, filters=history.Filters(), after=None,
                              limit=10, timezone="UTC")  # fmt: skip
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(page.rows) == 10 and page.next
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 2  # the page, then the reviews of its items


def test_every_message_the_history_pages_name_exists_in_both_languages():
    en, ko = catalogues()["en"], catalogues()["ko"]
    built = [f"history.route.{r}" for r in history.ROUTE_FILTERS]
    built += [f"history.verdict.{v}" for v in history.VERDICT_FILTERS]
    built += [f"history.route_reason.{r}" for r in ("no_defect", "confident", "uncertain",
              "likely_false_alarm", "inference_unavailable", "model_error", "cold_start",
              "audit")]  # fmt: skip
    built += [f"history.status.{s}" for s in ("queued", "inferring", "routed")]
    built += [f"history.event.{e}" for e in ("received", "routed", "queued", "decided",
                                             "undone", "sent_back")]  # fmt: skip
    built += [f"history.outcome.{o}" for o in ("confirmed", "changed", "not_defect", "added")]
    built += [f"history.bad.{c}" for c in ("too_long", "unknown", "date", "before_from",
                                           "limit", "cursor")]  # fmt: skip
    built += [f"history.field.{f}" for f in ("external_id", "station", "route", "verdict",
                                             "from", "to", "limit", "after")]  # fmt: skip
    assert [k for k in built if k not in en or k not in ko] == []
    # Korean really is Korean, not the English copied over.
    assert [k for k in built if not re.search("[가-힣]", ko[k])] == []


def test_a_lead_reaches_the_history_from_the_queue_page(make_app, db_session, garments):
    client = lead_client(make_app, db_session)
    queue = client.get("/review/queue").text
    assert 'href="/inspections?external_id=RMA-100"' in queue
    assert shown(client.get("/inspections?external_id=RMA-100").text) == [str(garments["decided"])]


def test_send_back_is_read_from_the_audit_log(db_session):
    task = _decided_three_times(db_session)
    events = db_session.scalars(select(AuditEvent.action)).all()
    assert history.SEND_BACK in events
    found = history.record(session=db_session, inspection_id=task.inspection_id)
    assert found is not None
    assert [e.kind for e in found.events].count("sent_back") == 1


def test_a_page_of_the_newest_reads_an_index_not_the_whole_table(db_session):
    """Newest first, a page at a time: an index scan that stops at the page, not a sort of
    every inspection the site ever had (the planner told not to scan the table)."""
    from sqlalchemy import event, text

    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM inspection" in statement and not statements:
            statements.append((statement, parameters))

    engine = db_session.get_bind().engine
    event.listen(engine, "before_cursor_execute", keep)
    try:
        nothing = history.parse_filters(external_id=None, station=None, route=None,
                                        verdict=None, date_from=None, date_to=None)  # fmt: skip
        history.search(session=db_session, filters=nothing, after=None, limit=50,
                       timezone="UTC")  # fmt: skip
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    [(statement, parameters)] = statements
    db_session.execute(text("SET LOCAL enable_seqscan = off"))
    cursor = db_session.connection().connection.cursor()
    cursor.execute("EXPLAIN " + statement, parameters)
    plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan Backward using inspection_created_at_idx" in plan, plan
    assert "Sort" not in plan.splitlines()[1], plan
