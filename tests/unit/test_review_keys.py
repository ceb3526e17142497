"""Per-user keys: defaults, a user's own keys, conflicts, and key names per keyboard layout."""

from __future__ import annotations

import pytest

from app.review import keys

ACTIONS = keys.actions(
    types=["stain", "tear", "normal", "hole"],
    severities=["minor", "moderate", "severe"],
    tags=["shadow", "print"],
)


def test_defaults_give_every_defect_type_a_number_key_and_normal_none():
    bound = keys.keymap(ACTIONS, {})
    assert bound["pass"] == "KeyP" and bound["confirm"] == "Space"
    assert [bound[f"type.{t}"] for t in ("stain", "tear", "hole")] == ["Digit1", "Digit2", "Digit3"]
    assert "type.normal" not in bound  # "not a defect" has its own key
    assert bound["severity.severe"] == "KeyE" and bound["tag.print"] == "Shift+Digit2"
    assert len(set(bound.values())) == len(bound), "no key does two things"


def test_more_than_twelve_types_leave_the_rest_without_a_default_key():
    many = keys.actions(types=[f"t{i}" for i in range(14)], severities=[], tags=[])
    bound = keys.keymap(many, {})
    assert bound["type.t11"] == "Equal" and "type.t12" not in bound


def test_a_users_own_key_wins_and_the_default_it_took_is_dropped():
    bound = keys.keymap(ACTIONS, {"pass": "KeyQ", "reject": ""})
    assert bound["pass"] == "KeyQ"
    assert "severity.minor" not in bound  # KeyQ was its default
    assert "reject" not in bound  # unbound on purpose
    assert keys.dispatch_table(bound)["KeyQ"] == "pass"


def test_stale_or_invalid_stored_keys_are_ignored():
    bound = keys.keymap(ACTIONS, {"pass": "Key<script>", "gone.action": "KeyZ"})
    assert bound["pass"] == "KeyP"


def test_validate_stores_only_what_differs_from_the_defaults():
    chosen = {a.id: (a.default or "") for a in ACTIONS} | {"undo": "KeyZ", "loupe": ""}
    assert keys.validate(ACTIONS, chosen) == {"undo": "KeyZ", "loupe": ""}


@pytest.mark.parametrize(
    ("chosen", "code"),
    [
        ({"pass": "KeyR", "reject": "KeyR"}, "duplicate"),
        ({"pass": "Escape"}, "bad_key"),
        ({"pass": "Tab"}, "bad_key"),
        ({"pass": "<img>"}, "bad_key"),
        ({"launch": "KeyX"}, "unknown_action"),
    ],
)
def test_validate_refuses_conflicts_reserved_and_unknown(chosen, code):
    with pytest.raises(keys.InvalidBindings) as refused:
        keys.validate(ACTIONS, chosen)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("code", "layout", "expected"),
    [
        ("KeyQ", "qwerty", "Q"), ("KeyQ", "azerty", "A"), ("KeyW", "azerty", "Z"),
        ("KeyZ", "qwertz", "Y"), ("Digit1", "azerty", "1"), ("Shift+Digit3", "qwerty", "⇧3"),
        ("Space", "qwerty", "Space"), ("ArrowDown", "azerty", "↓"), ("Minus", "azerty", ")"),
        (None, "qwerty", ""),
    ],
)  # fmt: skip
def test_labels_name_the_key_as_the_users_keyboard_prints_it(code, layout, expected):
    assert keys.label(code, layout) == expected
