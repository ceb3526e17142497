"""The OpenAPI documents: GET /openapi.json is the API alone, the full spec adds the pages
with what they answer to bad input (the 400 error page, not JSON)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Header, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.spec import API, OWN_BODY, ROLE_PAGE, allowed_methods, document, full_spec


class Thing(BaseModel):
    id: int


class Unused(BaseModel):
    name: str


def _token(authorization: Annotated[str | None, Header()] = None) -> str:
    return authorization or ""


def _app() -> FastAPI:
    pages = APIRouter(default_response_class=HTMLResponse, responses=ROLE_PAGE)
    api = APIRouter(prefix="/api/v1", responses=API)

    @pages.post("/things/{thing_id}")
    def change(thing_id: int, name: Annotated[str, Form()], unused: Unused) -> HTMLResponse:
        return HTMLResponse("")

    @api.get("/things/{thing_id}", response_model=Thing)
    def read(thing_id: int, token: Annotated[str, Depends(_token)], q: str | None = None) -> Thing:
        return Thing(id=thing_id)

    @api.post("/things", openapi_extra={OWN_BODY: {"required": True, "content": {}}})
    def make(name: Annotated[str | None, Form()] = None) -> Thing:
        return Thing(id=1)

    @api.get("/report")
    def report() -> dict[str, int]:
        return {}

    app = FastAPI()
    app.include_router(pages)
    app.include_router(api)
    document(app)
    return app


def test_a_page_documents_the_400_error_page_instead_of_fastapis_422_json():
    answers = full_spec(_app())["paths"]["/things/{thing_id}"]["post"]["responses"]
    assert "422" not in answers
    assert set(answers["400"]["content"]) == {"text/html"}
    assert set(answers["200"]["content"]) == {"text/html"}
    assert answers["503"]["headers"]["Retry-After"]["required"] is True


def test_the_api_keeps_json_errors():
    app = _app()
    answers = app.openapi()["paths"]["/api/v1/things/{thing_id}"]["get"]["responses"]
    assert set(answers["422"]["content"]) == {"application/json"}
    assert set(answers["400"]["content"]) == {"application/json"}
    assert app.openapi() is app.openapi()  # built once
    assert full_spec(app) is full_spec(app)


def test_the_public_document_is_the_api_alone_and_the_full_spec_has_the_pages():
    app = _app()
    public = TestClient(app).get("/openapi.json").json()
    assert set(public["paths"]) == {"/api/v1/things/{thing_id}", "/api/v1/things", "/api/v1/report"}
    assert "/things/{thing_id}" in full_spec(app)["paths"]
    # A page's body schema is not the API's business; the API's own ones stay.
    assert set(public["components"]["schemas"]) >= {"Thing"}
    assert "Unused" not in public["components"]["schemas"]
    assert "Unused" in full_spec(app)["components"]["schemas"]


def test_the_station_token_is_a_security_scheme_and_optional_parameters_are_never_null():
    read = _app().openapi()["paths"]["/api/v1/things/{thing_id}"]["get"]
    assert read["security"] == [{"stationToken": []}]
    names = [p["name"] for p in read["parameters"]]
    assert names == ["thing_id", "q"]  # no free `authorization` header
    assert read["parameters"][1]["schema"]["type"] == "string"
    assert "anyOf" not in read["parameters"][1]["schema"]
    # Without the token's dependency: the login session (the reports).
    report = _app().openapi()["paths"]["/api/v1/report"]["get"]
    assert report["security"] == [{"loginSession": []}]


def test_a_route_that_reads_its_own_body_documents_it():
    spec = _app().openapi()
    make = spec["paths"]["/api/v1/things"]["post"]
    assert make["requestBody"] == {"required": True, "content": {}}
    assert OWN_BODY not in make
    assert not any(name.startswith("Body_make") for name in spec["components"]["schemas"])


def test_allow_names_every_method_of_the_path():
    app = _app()
    assert allowed_methods(app, "/api/v1/things") == "POST"
    assert allowed_methods(app, "/api/v1/things/7") == "GET"
    assert allowed_methods(app, "/things/7") == "POST"

    @app.delete("/api/v1/things/{thing_id}")
    def delete(thing_id: int) -> None:
        raise HTTPException(404)

    app.state.method_table = None
    assert allowed_methods(app, "/api/v1/things/7") == "DELETE, GET"
