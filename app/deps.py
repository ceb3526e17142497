"""What request handlers are handed: the settings, the object store, and the language and
translator of the logged-in reader.

Handlers take them as parameters (`settings: SettingsDep`), so a test swaps one with
`app.dependency_overrides[request_settings] = ...` instead of changing the environment and
clearing caches. Code outside a request (workers, the command line) calls get_settings()
and get_store() itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth.deps import CurrentUser
from app.config import Settings, get_settings
from app.i18n import Translator, translator
from app.pages import SETTINGS_STATE, language_for
from app.storage import ObjectStore, get_store


# FastAPI runs every plain `def` dependency in its thread pool: a hop that costs CPU and a
# handoff of the GIL, several per request, each a wait under load (bench/README.md, issue
# 17). The dependencies here read cached values or the request only, so they are `async
# def` and run on the event loop; those that query the database (current_user,
# require_caller) and the object store's first making (a boto3 client) stay plain `def`.
async def request_settings() -> Settings:
    """get_settings() for a request; a test overrides this with its own Settings."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(request_settings)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]


async def settings_for_pages(request: Request, settings: SettingsDep) -> None:
    """Hand the request's settings to render(), which every page calls without them
    (app.web runs this before every route)."""
    setattr(request.state, SETTINGS_STATE, settings)


async def user_language(request: Request, user: CurrentUser) -> str:
    """The logged-in user's language. FastAPI resolves current_user once per request, so
    a route that also checks the user's role reads the user from the database once."""
    return language_for(request, user)


LanguageDep = Annotated[str, Depends(user_language)]


async def user_translator(language: LanguageDep) -> Translator:
    return translator(language)


TranslatorDep = Annotated[Translator, Depends(user_translator)]
