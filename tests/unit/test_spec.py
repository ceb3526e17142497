"""The OpenAPI spec says what the pages answer to bad input: the 400 error page, not JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Form
from fastapi.responses import HTMLResponse

from app.spec import API, ROLE_PAGE, document_pages


def _app() -> FastAPI:
    pages = APIRouter(default_response_class=HTMLResponse, responses=ROLE_PAGE)
    api = APIRouter(prefix="/api/v1", responses=API)

    @pages.post("/things/{thing_id}")
    def change(thing_id: int, name: Annotated[str, Form()]) -> HTMLResponse:
        return HTMLResponse("")

    @api.get("/things/{thing_id}")
    def read(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    app = FastAPI()
    app.include_router(pages)
    app.include_router(api)
    document_pages(app)
    return app


def test_a_page_documents_the_400_error_page_instead_of_fastapis_422_json():
    answers = _app().openapi()["paths"]["/things/{thing_id}"]["post"]["responses"]
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
