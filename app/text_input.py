"""Text PostgreSQL cannot store is refused at the door: a NUL character.

A NUL in a query string or form field made every query that carried it fail inside the
database driver (a 500): the login throttle's lookup, the queue search, a station's
external id. One check before any route runs (app.web adds it to every request) answers
400 instead, saying why, and no route has to remember it.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from app.auth.deps import FORM_TYPES

NUL = "\x00"
MESSAGE = "text may not contain NUL (0x00) characters"


async def refuse_nul(request: Request) -> None:
    """400 when a query parameter or a form field (its name, value or file name) has a NUL."""
    if any(NUL in name or NUL in value for name, value in request.query_params.multi_items()):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, MESSAGE)
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return
    # Starlette caches the parsed form: the route (or verify_csrf) does not parse it again.
    for name, value in (await request.form()).multi_items():
        text = value if isinstance(value, str) else value.filename or ""
        if NUL in name or NUL in text:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, MESSAGE)
