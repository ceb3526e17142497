"""What the routes answer besides their success, as the OpenAPI spec (GET /openapi.json) says.

Routers declare the answers every route of theirs can give (`APIRouter(responses=ROLE_PAGE)`)
and a route adds its own (`responses=page(404)`), so a station, a client generator or a
fuzzer reading the spec learns what the app really does (app.web's handlers): pages answer
in HTML, send a caller who is not logged in to /login with 303 and refuse a wrong role or
a missing CSRF token with 403; the API answers in JSON with a `detail`. A 503 carries
Retry-After: the database is away for a moment, and the same request will work again.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from app.auth.deps import API_PREFIX

Responses = dict[int | str, dict[str, Any]]

HTML = {"text/html": {"schema": {"type": "string"}}}
# `detail` is a sentence, or FastAPI's list of the parameters that failed validation.
ERROR_JSON = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail"],
            "properties": {
                "detail": {
                    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]
                }
            },
        }
    }
}


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


RETRY_AFTER = {"Retry-After": _header("Seconds to wait before trying again.", {"type": "integer"})}

_PAGE_ERRORS = {
    400: "The input is not valid (a parameter, or text with a NUL character).",
    401: "Wrong username or password: the login form again, saying so.",
    403: "The user's role may not use this page, or the CSRF token is missing or wrong.",
    404: "No such item, or it is gone.",
    409: "The item on screen is no longer the user's: their hold on it ran out.",
    422: "The week asked for is not an ISO week (2026-W47), or it has not started yet.",
    429: "Too many failed logins: the form, saying when to try again.",
    503: "The database is unavailable for a moment; the page says to try again shortly.",
}
_API_ERRORS = {
    400: "The request is not valid (such as text with a NUL character); `detail` says why.",
    401: "No valid credentials: a station token (`Authorization: Bearer`) or a login session.",
    403: "The role may not read this, or a request with a session cookie has no CSRF token.",
    404: "No such inspection.",
    413: "A photo is larger than the site allows.",
    415: "A file is not a photo in a supported format.",
    422: "A parameter is not valid; `detail` says which and why.",
    503: "The database is unavailable for a moment; send the same request again later.",
}


def _answer(description: str, content: dict[str, Any], code: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": content}
    if code in (429, 503):
        answer["headers"] = RETRY_AFTER
    return answer


def page(*codes: int) -> Responses:
    """Error pages in HTML, as app.web renders them."""
    return {code: _answer(_PAGE_ERRORS[code], HTML, code) for code in codes}


def api(*codes: int) -> Responses:
    """JSON errors with a `detail`."""
    return {code: _answer(_API_ERRORS[code], ERROR_JSON, code) for code in codes}


# Every page: the login form for a caller who is not logged in, or the next page after a
# form was sent (post/redirect/get); 400 for text with a NUL (app.text_input), on any route.
_LOCATION = {"Location": _header("Where to go next.", {"type": "string"})}
PAGE: Responses = {
    303: {"description": "See Other: the login form, or the page to go on to.",
          "headers": _LOCATION},
    **page(400, 503),
}  # fmt: skip
# HTMX cannot follow a redirect to the login form in place: it is told to load it instead.
_HX_REDIRECT = {"description": "The login form's URL.", "schema": {"type": "string"}}
LOGIN_REQUIRED: Responses = {
    204: {"description": "An HTMX request without a login: HX-Redirect names the login form.",
          "headers": {"HX-Redirect": {**_HX_REDIRECT, "required": True}}},
}  # fmt: skip
# A page route whose own success has no body (the review heartbeat).
NO_CONTENT: Responses = {
    204: {"description": "Done. To HTMX without a login, HX-Redirect names the login form.",
          "headers": {"HX-Redirect": _HX_REDIRECT}},
}  # fmt: skip
ROLE_PAGE: Responses = {**PAGE, **LOGIN_REQUIRED, **page(403)}
API: Responses = api(400, 401, 422, 503)
# A route whose every success is a redirect (post/redirect/get): its spec says 303 and no body.
SEE_OTHER: dict[str, Any] = {"status_code": 303, "response_class": RedirectResponse}


def document_pages(app: FastAPI) -> None:
    """FastAPI documents its 422 JSON validation error on every route with parameters;
    app.web answers a page's invalid input with the 400 error page instead, so the pages'
    spec says that (PAGE has it already)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI keeps it as app.openapi_schema: changed in place
        for path, operations in schema["paths"].items():
            if path.startswith(API_PREFIX):
                continue
            for operation in operations.values():
                answers = operation["responses"]
                if _fastapi_validation_error(answers.get("422")):
                    del answers["422"]
                    answers.setdefault("400", page(400)[400])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _fastapi_validation_error(answer: dict[str, Any] | None) -> bool:
    schema = (answer or {}).get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))
