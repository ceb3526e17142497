"""UI strings in English and Korean: flat JSON catalogues under app/messages/<language>/, one
file per area of the product (common, review, dashboard, models, admin), merged per language.

Templates call `t(key)`; a key that a catalogue lacks renders as the key itself (and is
logged) so a page never breaks, while tests/unit/test_i18n.py fails the build on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.taxonomy import Label, load_taxonomy

log = logging.getLogger(__name__)

CATALOGUE_DIR = Path(__file__).parent / "messages"
DEFAULT_LANGUAGE = "en"

Translator = Callable[..., str]


@lru_cache
def catalogues() -> dict[str, dict[str, str]]:
    """Every language's catalogue, keyed by language code (the directory's name)."""
    return {
        directory.name: _merged(sorted(directory.glob("*.json")))
        for directory in sorted(CATALOGUE_DIR.iterdir())
        if directory.is_dir()
    }


def _merged(paths: list[Path]) -> dict[str, str]:
    """One language's area files as one catalogue; a key in two files is an error, since
    which of the two a page shows would depend on the order the files are read in."""
    merged: dict[str, str] = {}
    for path in paths:
        part = json.loads(path.read_text(encoding="utf-8"))
        if twice := sorted(set(part) & set(merged)):
            raise ValueError(f"{path}: messages already defined in another file: {twice[:5]}")
        merged.update(part)
    return merged


def languages() -> tuple[str, ...]:
    """The language codes the UI is translated into."""
    return tuple(catalogues())


def translate(language: str, key: str, /, **params: object) -> str:
    """The message for `key` in `language`, with `{name}` placeholders filled from params."""
    all_catalogues = catalogues()
    catalogue = all_catalogues.get(language) or all_catalogues[DEFAULT_LANGUAGE]
    message = catalogue.get(key)
    if message is None:
        log.warning("missing UI message %r for language %r", key, language)
        message = all_catalogues[DEFAULT_LANGUAGE].get(key, key)
    return message.format(**params) if params else message


def say(
    t: Translator, texts: Sequence[str], codes: Sequence[dict[str, Any] | None] | None
) -> list[str]:
    """Stored texts in the reader's language, from the codes stored beside them
    (app.policy.problems); a text without a code (older rows) reads as written."""
    codes = codes or []
    said = []
    for i, text in enumerate(texts):
        code = codes[i] if i < len(codes) else None
        said.append(t(code["key"], **code["params"]) if code else text)
    return said


def translator(language: str) -> Translator:
    """A `t(key, **params)` bound to one language, as templates and views use it."""

    def t(key: str, /, **params: object) -> str:
        return translate(language, key, **params)

    return t


@lru_cache
def _taxonomy_labels() -> dict[str, dict[str, Label]]:
    taxonomy = load_taxonomy()
    return {
        "defect": {item.key: item for item in taxonomy.defect_types},
        "severity": {item.key: item for item in taxonomy.severities},
    }


def label(language: str, group: str, value: str | None) -> str:
    """Display name of a data value (a defect type, a severity, a route reason).

    Defect types and severities are named in the taxonomy file, which is configuration,
    so a site's new type is named there; other groups come from the catalogues. A value
    nobody named shows as itself rather than as a missing-message warning.
    """
    if not value:
        return ""
    taxonomy_label = _taxonomy_labels().get(group, {}).get(value)
    if taxonomy_label is not None:
        return taxonomy_label.name(language)
    catalogue = catalogues().get(language) or catalogues()[DEFAULT_LANGUAGE]
    return catalogue.get(f"{group}.{value}", value)


def negotiate(accept_language: str | None) -> str:
    """The best supported language for an Accept-Language header (for anonymous visitors)."""
    supported = languages()
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = tag.strip().lower().split("-")[0]
        if code in supported:
            ranked.append((quality, code))
    # max() keeps the first of equal weights, which is the order the browser sent.
    return max(ranked, key=lambda item: item[0])[1] if ranked else DEFAULT_LANGUAGE


def duration(seconds: int, t: Translator) -> str:
    """ "45 s", "12 min", "3 h 05 min" in the user's language; negative means overdue."""
    seconds = abs(seconds)
    if seconds < 60:
        return t("time.seconds", n=seconds)
    minutes = seconds // 60
    if minutes < 60:
        return t("time.minutes", n=minutes)
    return t("time.hours", h=minutes // 60, m=f"{minutes % 60:02d}")
