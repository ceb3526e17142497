"""Each inspector's keys: the settings page, and the keyboard every review page is built with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.auth.deps import ReviewerDep
from app.auth.tables import KEYBOARD_LAYOUTS, User
from app.db import SessionDep
from app.deps import LanguageDep, SettingsDep, TranslatorDep
from app.i18n import label, translate
from app.pages import render
from app.review import keys
from app.spec import ROLE_PAGE, SEE_OTHER
from models.taxonomy import load_taxonomy

router = APIRouter(tags=["review"], default_response_class=HTMLResponse, responses=ROLE_PAGE)
MAX_CODE = 40


@dataclass(frozen=True)
class Keyboard:
    """One user's keys: labels for the buttons, and the lookup table for the script."""

    actions: list[keys.Action]
    bound: dict[str, str]  # action -> code
    labels: dict[str, str]  # action -> what the key is called on their keyboard

    @property
    def dispatch_json(self) -> str:
        return json.dumps(keys.dispatch_table(self.bound), separators=(",", ":"))


def all_actions(tags: tuple[str, ...]) -> list[keys.Action]:
    """Every action of the review page: from the taxonomy and the site's tags."""
    return list(_actions(tags))


@lru_cache(maxsize=8)
def _actions(tags: tuple[str, ...]) -> tuple[keys.Action, ...]:
    taxonomy = load_taxonomy()  # a file read and a check: once, not on every page
    return tuple(
        keys.actions(types=taxonomy.type_keys, severities=taxonomy.severity_keys, tags=tags)
    )


def keyboard_for(user: User, tags: tuple[str, ...]) -> Keyboard:
    """The user's keyboard: defaults, their own choices, their layout's key names, with a
    key for each of the site's `tags`."""
    actions = all_actions(tags)
    bound = keys.keymap(actions, user.key_bindings or {})
    layout = user.keyboard_layout or "qwerty"
    labels = {action: _key_name(code, layout, user.language) for action, code in bound.items()}
    return Keyboard(actions, bound, labels)


def _key_name(code: str, layout: str, language: str) -> str:
    name = keys.label(code, layout)
    # Keys with a word for a name (Space, Enter) are named in the user's language.
    return translate(language, f"keyname.{name}") if name in NAMED_KEYS else name


NAMED_KEYS = frozenset({"Space", "Enter"})


def action_name(action_id: str, lang: str) -> str:
    """An action's name for people: "Reject", "Type: Hole", "Tag: Shadow"."""
    group, _, value = action_id.partition(".")
    if not value:
        return translate(lang, f"action.{action_id}") if action_id in ACTION_IDS else action_id
    name = label(lang, LABEL_GROUPS.get(group, group), value)
    return translate(lang, f"action.group.{group}", name=name)


# Action groups and the label() group that names their values.
LABEL_GROUPS = {"type": "defect", "severity": "severity", "tag": "tag"}
ACTION_IDS = frozenset(name for name, _ in keys.FIXED_ACTIONS)


def _page(
    request: Request, user: User, tags: tuple[str, ...], *, error: str | None = None,
    chosen: dict[str, str] | None = None, saved: bool = False, status_code: int = 200,
) -> Response:  # fmt: skip
    keyboard = keyboard_for(user, tags)
    context = {
        "user": user,
        "keyboard": keyboard,
        "chosen": chosen if chosen is not None else keyboard.bound,
        "layouts": KEYBOARD_LAYOUTS,
        "error": error,
        "saved": saved,
        "action_name": action_name,
        # The script names a newly pressed key as the chosen keyboard layout does.
        "layout_labels": {
            layout: {**keys.BASE_LABELS, **names} for layout, names in keys.LAYOUT_LABELS.items()
        },
    }
    return render(request, "review_keys.html", context, status_code=status_code)


@router.get("/review/keys", name="review_keys")
def keys_page(request: Request, user: ReviewerDep, settings: SettingsDep) -> Response:
    """Every action of the review page with its key; a key is changed by pressing it."""
    saved = request.query_params.get("saved") == "1"
    return _page(request, user, settings.tag_keys, saved=saved)


async def pressed_keys(request: Request) -> dict[str, str]:
    """The posted `key.<action>` fields, as action -> key code. Async because only awaiting
    the form can read them; Starlette caches the parsed form, so it is read once."""
    form = await request.form()
    return {
        name.removeprefix("key."): str(value).strip()[:MAX_CODE]
        for name, value in form.multi_items()
        if name.startswith("key.")
    }


# A plain `def`: it commits to the database, and FastAPI runs a sync route in its threadpool
# instead of on the event loop that serves every other request of the process.
@router.post("/review/keys", **SEE_OTHER)
def save_keys(
    request: Request,
    session: SessionDep,
    user: ReviewerDep,
    settings: SettingsDep,
    lang: LanguageDep,
    t: TranslatorDep,
    chosen: Annotated[dict[str, str], Depends(pressed_keys)],
    layout: Annotated[str, Form()] = "qwerty",
) -> Response:
    """Save the keys (one `key.<action>` field each) and the keyboard layout."""
    tags = settings.tag_keys
    if layout not in KEYBOARD_LAYOUTS:
        return _page(request, user, tags, error=t("keys.error.layout"), status_code=400)
    try:
        overrides = keys.validate(all_actions(tags), chosen)
    except keys.InvalidBindings as exc:
        params = {k: v if k == "key" else action_name(v, lang) for k, v in exc.params.items()}
        error = t(f"keys.error.{exc.code}", **params)
        return _page(request, user, tags, error=error, chosen=chosen, status_code=400)
    user.key_bindings = overrides
    user.keyboard_layout = layout
    session.commit()
    return RedirectResponse("/review/keys?saved=1", status_code=303)


@router.post("/review/keys/reset", **SEE_OTHER)
def reset_keys(session: SessionDep, user: ReviewerDep) -> Response:
    """Back to the default keys (the layout stays)."""
    user.key_bindings = {}
    session.commit()
    return RedirectResponse("/review/keys?saved=1", status_code=303)
