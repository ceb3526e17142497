"""What request handlers are handed: the settings, the object store, and the language and
translator of the logged-in reader.

Handlers take them as parameters (`settings: SettingsDep`), so a test swaps one with
`app.dependency_overrides[get_settings] = ...` instead of changing the environment and
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

SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]


def settings_for_pages(request: Request, settings: SettingsDep) -> None:
    """Hand the request's settings to render(), which every page calls without them
    (app.web runs this before every route)."""
    setattr(request.state, SETTINGS_STATE, settings)


def user_language(request: Request, user: CurrentUser) -> str:
    """The logged-in user's language. FastAPI resolves current_user once per request, so
    a route that also checks the user's role reads the user from the database once."""
    return language_for(request, user)


LanguageDep = Annotated[str, Depends(user_language)]


def user_translator(language: LanguageDep) -> Translator:
    return translator(language)


TranslatorDep = Annotated[Translator, Depends(user_translator)]
