"""Rendering pages: the templates, the language a page speaks, and the context every page gets.

The areas' views render through this module; app.web builds the app from their routers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from starlette.templating import Jinja2Templates

from app.auth.deps import csrf_token, is_htmx
from app.auth.tables import User
from app.config import Settings, get_settings
from app.i18n import label, languages, negotiate, translator

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "templates"
# Where app.deps.settings_for_pages leaves the request's settings for render().
SETTINGS_STATE = "settings"

# Autoescape everything: regions carry model-written text, which is untrusted input.
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
)


def language_for(request: Request, user: User | None = None) -> str:
    """The user's saved language, else the one picked this session, else the browser's."""
    if user is not None and user.language:
        return user.language
    picked = request.session.get("language")
    return picked if picked in languages() else negotiate(request.headers.get("accept-language"))


def _settings(request: Request) -> Settings:
    settings = getattr(request.state, SETTINGS_STATE, None)
    # The error page of a request that reached no route (an unknown path) has no request
    # settings: the process's own, which only a test's override differs from.
    return settings if isinstance(settings, Settings) else get_settings()


def _page_context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    user = context.get("user")
    lang = language_for(request, user)
    query = request.url.query
    return {
        "request": request,
        "user": user,
        "lang": lang,
        "languages": languages(),
        "t": translator(lang),
        "label": lambda group, value: label(lang, group, value),
        "csrf_token": csrf_token(request),
        "demo_models": _settings(request).demo_models,
        "current_path": request.url.path + (f"?{query}" if query else ""),
        **context,
    }


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    block: str | None = None,
    *,
    fragment: bool = False,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The whole page, or only its named `block` when HTMX asks for a fragment (or
    `fragment` says so: a script's request that is not HTMX's)."""
    ctx = _page_context(request, context or {})
    page = templates.get_template(template)
    if block is not None and (fragment or is_htmx(request)):
        html = "".join(page.blocks[block](page.new_context(ctx)))
    else:
        html = page.render(ctx)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    # The same URL answers with a page or a fragment; caches must keep them apart.
    response.headers.append("Vary", "HX-Request")
    return response


def stored_image(data: bytes, media_type: str) -> Response:
    """An image whose URL always means the same bytes (photos are content-addressed, a
    snapshot's crops are cut from hash-checked photos): cached for a year, and sandboxed so
    that a file posing as an image can run nothing."""
    return Response(
        data,
        media_type=media_type,
        headers={
            "Cache-Control": "private, max-age=31536000, immutable",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
