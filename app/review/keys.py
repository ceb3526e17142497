"""Keyboard shortcuts of the review page: the actions, their default keys, per-user keys.

Pure. A key is a physical position, `KeyboardEvent.code` ("KeyP", "Digit1", "Space"),
optionally with Shift ("Shift+Digit1"). Positions work whatever the input language: with
a Korean IME on, P types ㅔ but is still "KeyP". What a position is called depends on the
keyboard, so the labels on the buttons come from the user's layout (KeyQ is "A" on an
AZERTY keyboard), and every action can be moved to another key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models.taxonomy import NORMAL

SHIFT = "Shift+"
CODE = re.compile(
    r"(Shift\+)?(Key[A-Z]|Digit[0-9]|Numpad[0-9]|F[1-9]|F1[0-2]|Space|Enter|Backspace|Delete"
    r"|Arrow(Up|Down|Left|Right)|Minus|Equal|BracketLeft|BracketRight|Backslash|Semicolon"
    r"|Quote|Backquote|Comma|Period|Slash|IntlBackslash|Home|End|PageUp|PageDown|Insert)"
)
# Keys the page itself needs: Escape leaves the note field and cancels a drawing; Tab
# moves the focus. They cannot be bound.
RESERVED = frozenset({"Escape", "Tab"})

FIXED_ACTIONS: tuple[tuple[str, str | None], ...] = (
    ("confirm", "Space"),
    ("pass", "KeyP"),
    ("reject", "KeyR"),
    ("undo", "KeyU"),
    ("next_region", "ArrowDown"),
    ("prev_region", "ArrowUp"),
    ("not_defect", "KeyN"),
    ("note", "KeyT"),
    ("loupe", "KeyL"),
)
TYPE_KEYS = tuple(f"Digit{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 0)) + ("Minus", "Equal")
SEVERITY_KEYS = ("KeyQ", "KeyW", "KeyE", "KeyY")
TAG_KEYS = tuple(SHIFT + code for code in TYPE_KEYS[:10])

BASE_LABELS = {
    "Minus": "-", "Equal": "=", "BracketLeft": "[", "BracketRight": "]", "Backslash": "\\",
    "Semicolon": ";", "Quote": "'", "Backquote": "`", "Comma": ",", "Period": ".",
    "Slash": "/", "IntlBackslash": "\\", "ArrowUp": "↑", "ArrowDown": "↓",
    "ArrowLeft": "←", "ArrowRight": "→", "Space": "Space", "Enter": "Enter",
    "Backspace": "⌫", "Delete": "Del", "Home": "Home", "End": "End", "PageUp": "PgUp",
    "PageDown": "PgDn", "Insert": "Ins",
}  # fmt: skip
# Where a layout prints something else on the same physical key.
LAYOUT_LABELS: dict[str, dict[str, str]] = {
    "qwerty": {},
    "azerty": {
        "KeyQ": "A", "KeyA": "Q", "KeyW": "Z", "KeyZ": "W", "KeyM": ",", "Semicolon": "M",
        "Comma": ";", "Period": ":", "Slash": "!", "Minus": ")", "Equal": "=",
        "BracketLeft": "^", "BracketRight": "$", "Quote": "ù", "Backquote": "²",
        "Backslash": "*", "IntlBackslash": "<",
    },
    "qwertz": {
        "KeyY": "Z", "KeyZ": "Y", "Minus": "ß", "Equal": "´", "Semicolon": "Ö", "Quote": "Ä",
        "BracketLeft": "Ü", "BracketRight": "+", "Slash": "-", "Backquote": "^",
        "Backslash": "#", "IntlBackslash": "<",
    },
}  # fmt: skip


class InvalidBindings(ValueError):
    """The keys asked for cannot be saved; `code` and `params` say why (for the catalogue)."""

    def __init__(self, code: str, **params: str) -> None:
        super().__init__(f"{code}: {params}")
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Action:
    id: str  # confirm, pass, ..., type.hole, severity.minor, tag.shadow
    default: str | None


def actions(
    *, types: Sequence[str], severities: Sequence[str], tags: Sequence[str]
) -> list[Action]:
    """Every action of the review page, with its default key (None: no key by default)."""
    found = [Action(name, code) for name, code in FIXED_ACTIONS]
    defect_types = [t for t in types if t != NORMAL]  # "not a defect" has its own key
    found += [Action(f"type.{t}", _nth(TYPE_KEYS, i)) for i, t in enumerate(defect_types)]
    found += [Action(f"severity.{s}", _nth(SEVERITY_KEYS, i)) for i, s in enumerate(severities)]
    found += [Action(f"tag.{t}", _nth(TAG_KEYS, i)) for i, t in enumerate(tags)]
    return found


def _nth(codes: Sequence[str], index: int) -> str | None:
    return codes[index] if index < len(codes) else None


def keymap(all_actions: Sequence[Action], overrides: Mapping[str, object]) -> dict[str, str]:
    """action id -> key for this user: the defaults with their own choices on top.

    An override of "" unbinds the action. Stale overrides (an action a site removed, a
    key that is no longer valid) are ignored rather than breaking the page.
    """
    bound: dict[str, str] = {}
    for action in all_actions:
        code = overrides.get(action.id, action.default)
        if code != "" and not (isinstance(code, str) and CODE.fullmatch(code)):
            code = action.default  # a stored key that is no longer valid
        if code:
            bound[action.id] = code
    # A default that a user's own choice took over stays unbound rather than firing twice.
    owners: dict[str, str] = {}
    for action_id, code in list(bound.items()):
        if code in owners and action_id not in overrides:
            del bound[action_id]
        elif code in owners:
            del bound[owners[code]]
            owners[code] = action_id
        else:
            owners[code] = action_id
    return bound


def validate(all_actions: Sequence[Action], chosen: Mapping[str, str]) -> dict[str, str]:
    """The overrides to store for a user's chosen keys ("" = no key); raises InvalidBindings."""
    known = {a.id: a for a in all_actions}
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise InvalidBindings("unknown_action", action=", ".join(unknown))
    taken: dict[str, str] = {}
    for action_id, code in chosen.items():
        if code == "":
            continue
        if code in RESERVED or not CODE.fullmatch(code):
            raise InvalidBindings("bad_key", action=action_id, key=code)
        if code in taken:
            raise InvalidBindings("duplicate", key=code, first=taken[code], second=action_id)
        taken[code] = action_id
    return {a: c for a, c in chosen.items() if c != (known[a].default or "")}


def label(code: str | None, layout: str) -> str:
    """What the key is called on the user's keyboard: "A", "⇧1", "Space"."""
    if not code:
        return ""
    shifted = code.startswith(SHIFT)
    base = code.removeprefix(SHIFT)
    name = LAYOUT_LABELS.get(layout, {}).get(base)
    if name is None:
        name = BASE_LABELS.get(base) or base.removeprefix("Key").removeprefix("Digit")
    return ("⇧" + name) if shifted else name


def dispatch_table(bound: Mapping[str, str]) -> dict[str, str]:
    """key -> action id, as the page's script looks keys up."""
    return {code: action_id for action_id, code in bound.items()}
