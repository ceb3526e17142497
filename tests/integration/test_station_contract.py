"""The station API's contract: GET /openapi.json describes the API as it is, and schemathesis
finds nothing the running app answers outside it.

The document holds the API alone (the pages are in app.spec.full_spec, for the fuzz suite).
The upload is described as the route reads it, each documented error is one the route
really gives, and a 405 names every method of its path. Then schemathesis runs its
examples, coverage (every parameter at and past its limits, missing parts, unsupported
methods), fuzzing and stateful phases over the public document with a station's token,
checking for 5xx, undocumented statuses, content types, headers and bodies, and that the
token is really needed. LOUPE_CONTRACT_SEED replays a run: the seed is in the failure.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.auth.service import create_station_token
from app.inspections.tables import Inspection
from app.inspections.validation import ALLOWED_FORMATS
from app.inspections.views import MAX_STATION, MAX_TEXT, MAX_VIEW
from tests.integration import fuzz_support as fz
from tests.integration.web_support import make_app, stored_item  # noqa: F401 (fixture)
from tests.support import garment_photo

pytestmark = pytest.mark.integration

live_app = fz.live_app  # fixture
UPLOAD = "/api/v1/inspections"
ERRORS = {"400", "401", "403", "413", "415", "422", "503"}
# What schemathesis checks. Left out: positive_data_acceptance (no schema can say "a cursor
# this API gave out" or "a photo Loupe can read", so valid-looking values rightly get 400
# and 415) and negative_data_rejection (a form field is text on the wire: an "object" for
# `view` arrives as the text "{}", a valid view).
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
    "missing_required_header",
    "ignored_auth",
))  # fmt: skip
EXAMPLES = int(os.environ.get("LOUPE_CONTRACT_EXAMPLES", "20"))
SCHEMATHESIS = Path(sys.executable).with_name("st")


@pytest.fixture
def api(make_app, db_session):  # noqa: F811
    client = make_app()
    token = create_station_token(session=db_session, station="dock-5")
    db_session.commit()
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def upload(client, *photos: bytes, headers: dict[str, str] | None = None, **form):
    files = [("image", (f"p{i}.png", data, "image/png")) for i, data in enumerate(photos)]
    return client.post(UPLOAD, files=files, data=form, headers=headers or {})


def test_the_public_document_is_the_api_alone(make_app):  # noqa: F811
    client = make_app()
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/healthz",
        "/api/v1/inspections",
        "/api/v1/inspections/{inspection_id}",
        "/api/v1/reports/weekly",
        "/api/v1/reports/weekly.csv",
    }
    assert "text/html" not in str(document)  # no page, no error page
    assert "Body_" not in str(document["components"])  # no page's form either
    assert client.get("/docs").status_code == 200
    from app.spec import full_spec

    assert "/review/{task_id}/decision" in full_spec(client.app)["paths"]


def test_the_upload_is_documented_as_the_route_reads_it(make_app):  # noqa: F811
    operation = make_app().get("/openapi.json").json()["paths"][UPLOAD]["post"]
    assert operation["security"] == [{"stationToken": []}]
    form = operation["requestBody"]["content"]["multipart/form-data"]
    schema = form["schema"]
    assert operation["requestBody"]["required"] is True and schema["required"] == ["image"]
    image = schema["properties"]["image"]
    assert image["type"] == "array" and image["minItems"] == 1
    assert image["items"]["format"] == "binary"
    assert set(form["encoding"]["image"]["contentType"].split(", ")) == set(
        ALLOWED_FORMATS.values()
    )
    limits = {name: schema["properties"][name] for name in ("view", "external_id", "station")}
    assert limits["view"]["items"] == {"type": "string", "maxLength": MAX_VIEW}
    assert limits["external_id"] == {**limits["external_id"], "type": "string",
                                     "maxLength": MAX_TEXT}  # fmt: skip
    assert limits["station"]["maxLength"] == MAX_STATION
    [key] = operation["parameters"]
    assert (key["name"], key["in"], key["schema"]["maxLength"]) == ("Idempotency-Key", "header",
                                                                    MAX_TEXT)  # fmt: skip
    answers = operation["responses"]
    assert set(answers) == {"200", "201"} | ERRORS
    for code in ERRORS:
        assert answers[code]["content"]["application/json"]["schema"]["required"] == ["detail"]
    assert answers["503"]["headers"]["Retry-After"]["required"] is True


def test_each_documented_answer_of_the_upload_is_one_it_gives(api, make_app, db_session):  # noqa: F811
    photo = garment_photo()
    key = {"Idempotency-Key": "rma-5-1"}
    assert upload(api, photo, headers=key, external_id="RMA-5").status_code == 201
    assert upload(api, photo, headers=key).status_code == 200  # the key again
    assert api.post(UPLOAD, data={"external_id": "RMA-6"}).status_code == 400  # no image
    assert upload(api, photo, view="v" * (MAX_VIEW + 1)).status_code == 400
    assert upload(api, b"%PDF-1.4 not a photo").status_code == 415
    assert api.post(UPLOAD, data={"image": "text, not a file"}).status_code == 422
    anonymous = make_app()
    assert upload(anonymous, photo).status_code == 401
    warehouse = create_station_token(session=db_session, station="wms", scope="warehouse")
    db_session.commit()
    refused = upload(anonymous, photo, headers={"Authorization": f"Bearer {warehouse}"})
    assert refused.status_code == 403 and "warehouse" in refused.json()["detail"]
    big = make_app(max_upload_bytes=1000)
    big.headers.update(api.headers)
    assert upload(big, photo).status_code == 413


def test_a_view_longer_than_its_column_is_a_clear_400_not_a_server_error(api, db_session):
    # The view column holds 50 characters; a longer one used to reach the database and 500.
    response = upload(api, garment_photo(), view="front-" + "x" * MAX_VIEW)
    assert response.status_code == 400
    assert f"longer than {MAX_VIEW}" in response.json()["detail"]
    assert db_session.scalar(select(Inspection).limit(1)) is None
    assert upload(api, garment_photo(), view="f" * MAX_VIEW).status_code == 201


def test_a_405_names_every_method_of_its_path(api):
    response = api.delete(UPLOAD)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"  # Starlette's own said POST alone
    assert response.json() == {"detail": "Method Not Allowed"}
    assert api.put(f"{UPLOAD}/{'0' * 8}-0000-0000-0000-{'0' * 12}").headers["allow"] == "GET"
    page = api.patch("/review")
    assert page.status_code == 405 and page.headers["allow"] == "GET"


def test_schemathesis_finds_the_running_api_as_documented(live_app, committed_db, tmp_path):
    token = create_station_token(session=committed_db, station="contract-dock")
    # An item of the token's own station, routed with regions: what GET reads back in full.
    stored_item(committed_db, name="contract", external_id="RMA-C-1", station="contract-dock")
    committed_db.commit()
    seed = int(os.environ.get("LOUPE_CONTRACT_SEED") or random.randrange(2**32))
    command = [
        str(SCHEMATHESIS), "--no-color", "run", f"{live_app.base_url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(EXAMPLES),
        "--seed", str(seed),
        "--workers", "1",
        "--request-timeout", "30",
        # In tests /healthz answers 503 by design (no Serve app or worker runs here), after
        # seconds of waiting for their pings; tests/integration/test_fuzz.py skips it too.
        "--exclude-path", "/healthz",
    ]  # fmt: skip
    # In a scratch directory: schemathesis keeps a cache of the cases it ran where it runs.
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"seed {seed}\n{report[-12_000:]}"
    # Every operation of the document but /healthz's one: the station's and the reports'.
    assert "Selected: 5/6" in report and "Tested: 5" in report, report[-3000:]
