"""What the routes answer besides their success, as the OpenAPI spec says.

GET /openapi.json (and /docs) is the API's document, the /api/v1 routes and /healthz: what
a station, a warehouse system or a client generator needs. full_spec(app) adds the pages,
for the fuzz suite that checks every route against it.

Routers declare the answers every route of theirs can give (`APIRouter(responses=ROLE_PAGE)`)
and a route adds its own (`responses=page(404)`), so a station, a client generator or a
fuzzer reading the spec learns what the app really does (app.web's handlers): pages answer
in HTML, send a caller who is not logged in to /login with 303 and refuse a wrong role or
a missing CSRF token with 403; the API answers in JSON with a `detail`. A 503 carries
Retry-After: the database is away for a moment, and the same request will work again. A
405 carries Allow with every method of its path (allowed_methods).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, compile_path
from starlette.staticfiles import StaticFiles

from app.auth.deps import API_PREFIX, SESSION_COOKIE

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


# --- the documents ---------------------------------------------------------------------------

# Outside /api/, /healthz answers in JSON for machines (probes, `make run`): it is API too.
API_PATHS = ("/healthz",)
STATION_TOKEN = "stationToken"
LOGIN_SESSION = "loginSession"
SECURITY_SCHEMES = {
    STATION_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "A station's token (`loupe tokens create`, or /admin/tokens): it sends "
        "photos and reads its own station's inspections. A warehouse token reads every "
        "station's and sends nothing (403).",
    },
    LOGIN_SESSION: {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "A logged-in user's session cookie (the form at /login).",
    },
}
API_DESCRIPTION = (
    "Camera stations send a garment's photos and read back what became of them; a "
    "warehouse system pages through the final decisions. Every error answers in JSON with "
    "a `detail` that says what was wrong. The pages people use in a browser are not part "
    "of this document."
)
FULL_DESCRIPTION = "Every route of the app, pages included. GET /openapi.json is the API alone."
# A route that reads its request body itself (to answer a missing or bad part with its own
# 400) names the body it really takes under this key of its `openapi_extra`, in place of
# the one FastAPI derives from its parameters.
OWN_BODY = "x-loupe-request-body"


def in_api_document(path: str) -> bool:
    return path.startswith(API_PREFIX) or path in API_PATHS


def document(app: FastAPI) -> None:
    """GET /openapi.json (and /docs, /redoc) describe the API alone: a station's or a
    client generator's contract. full_spec(app) describes every route, pages included."""

    def api_only() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _api_part(full_spec(app))
        return app.openapi_schema

    app.openapi = api_only  # type: ignore[method-assign]


def full_spec(app: FastAPI) -> dict[str, Any]:
    """Every route, pages and API, as the fuzz suite checks the whole app against it
    (tests/integration/test_fuzz.py). Built once; callers must not change it."""
    spec: dict[str, Any] | None = getattr(app.state, "full_spec", None)
    if spec is None:
        spec = get_openapi(title=app.title, version=app.version, description=FULL_DESCRIPTION,
                           openapi_version=app.openapi_version, routes=app.routes)  # fmt: skip
        for path, operations in spec["paths"].items():
            for operation in operations.values():
                if OWN_BODY in operation:
                    operation["requestBody"] = operation.pop(OWN_BODY)
                if in_api_document(path):
                    _document_api_operation(path, operation)
                else:
                    _document_page_operation(operation)
        spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        _drop_unused_schemas(spec)
        app.state.full_spec = spec
    return spec


def _api_part(spec: dict[str, Any]) -> dict[str, Any]:
    part = copy.deepcopy(spec)
    part["paths"] = {path: ops for path, ops in part["paths"].items() if in_api_document(path)}
    part["info"]["description"] = API_DESCRIPTION
    _drop_unused_schemas(part)
    return part


def _document_page_operation(operation: dict[str, Any]) -> None:
    """FastAPI documents its 422 JSON validation error on every route with parameters;
    app.web answers a page's invalid input with the 400 error page instead, so the pages'
    spec says that (PAGE has it already)."""
    answers = operation["responses"]
    if _fastapi_validation_error(answers.get("422")):
        del answers["422"]
        answers.setdefault("400", page(400)[400])


def _document_api_operation(path: str, operation: dict[str, Any]) -> None:
    """Who may call it, as a security scheme rather than a free header; optional parameters
    as what is sent on the wire (a value or nothing, never JSON's null)."""
    parameters = operation.get("parameters", [])
    token = [p for p in parameters if p["in"] == "header" and p["name"].lower() == "authorization"]
    if token:  # app.auth.deps.require_caller reads it
        operation["security"] = [{STATION_TOKEN: []}]
    elif path.startswith(API_PREFIX):  # the login session, as the pages (the reports)
        operation["security"] = [{LOGIN_SESSION: []}]
    else:
        operation["security"] = []
    operation["parameters"] = [_on_the_wire(p) for p in parameters if p not in token]
    if not operation["parameters"]:
        del operation["parameters"]


def _on_the_wire(parameter: dict[str, Any]) -> dict[str, Any]:
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf", [])
    values = [b for b in branches if b.get("type") != "null"]
    if parameter.get("required") or len(values) != 1 or len(branches) != 2:
        return parameter
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**parameter, "schema": {**values[0], **rest}}


def _drop_unused_schemas(spec: dict[str, Any]) -> None:
    """Keep the component schemas the paths use, directly or through other schemas."""
    schemas = spec.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = _refs(spec["paths"])
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending |= _refs(schemas[name])
    for name in set(schemas) - used:
        del schemas[name]


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _fastapi_validation_error(answer: dict[str, Any] | None) -> bool:
    schema = (answer or {}).get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


# --- 405 ------------------------------------------------------------------------------------


def allowed_methods(app: Starlette, path: str) -> str:
    """The Allow header of a 405: every method a route takes on `path`. Starlette's own names
    only the first route whose path matched (POST for /api/v1/inspections, not its GET)."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(
        app.state, "method_table", None
    )
    if table is None:
        table = [(compile_path(p)[0], frozenset(m)) for p, m in _routes(app.routes)]
        app.state.method_table = table
    return ", ".join(sorted({m for regex, methods in table if regex.match(path) for m in methods}))


def _routes(routes: list[BaseRoute]) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route, the routers FastAPI includes flattened."""
    found, stack = [], list(routes)
    while stack:
        route = stack.pop()
        if hasattr(route, "effective_route_contexts"):  # a router FastAPI included
            stack.extend(route.effective_route_contexts())
        elif isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            found.append((route.path + "/{path:path}", {"GET", "HEAD"}))
        elif isinstance(path := getattr(route, "path", None), str):
            found.append((path, set(getattr(route, "methods", None) or ())))
    return found
