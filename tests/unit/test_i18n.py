"""The English and Korean catalogues agree, and every message the code asks for exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from app.auth.tables import KEYBOARD_LAYOUTS, LANGUAGES, ROLES
from app.config import Settings
from app.dashboard.presenters import KPIS
from app.dashboard.snapshots import DEFAULT_RULES, parse_rules
from app.feedback.tables import KINDS as FEEDBACK_KINDS
from app.i18n import catalogues, label, negotiate, translate
from app.instructions.kinds import KINDS as INSTRUCTION_KINDS
from app.policy.patterns import FALLBACK_ACTION
from app.review.keys import FIXED_ACTIONS
from app.review.priority import BANDS
from app.review.tables import VERDICTS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATTERN_RULES = parse_rules(DEFAULT_RULES.read_text(encoding="utf-8"))
# t("key") or t('key', name=...) in templates and Python code alike.
T_CALL = re.compile(r"""\bt\(\s*["']([^"']+)["']""")
# Values shown through label(group, value) whose names live in the catalogues.
LABELLED = {
    "language": LANGUAGES,
    "role": ROLES,
    "reason": ("uncertain", "inference_unavailable", "model_error"),
    "band": BANDS,
    "verdict": VERDICTS,
    "layout": KEYBOARD_LAYOUTS,
    "tag": Settings().tag_keys,  # the default quick tags; a site's own fall back to their key
    "decision_state": ("undone", "in_effect", "reopened", "superseded"),
    "action": tuple(name for name, _ in FIXED_ACTIONS),
    "action.group": ("type", "severity", "tag"),
    # Keys the code builds from a code or a field name (t(f"keys.error.{code}")).
    "keys.error": ("layout", "unknown_action", "bad_key", "duplicate"),
    "review.undo_refused": ("not_yours", "not_current", "too_late"),
    "admin.invalid": ("username", "role", "language", "password", "station"),
    "queue": ("not_held",),
    "time": ("seconds", "minutes", "hours"),
    "keyname": ("Space", "Enter"),
    "error_kind": FEEDBACK_KINDS,
    "pattern_action": tuple(r.action for r in DEFAULT_PATTERN_RULES) + (FALLBACK_ACTION,),
    "dashboard.kpi": tuple(key for key, *_ in KPIS),
    "dashboard.route": ("auto_pass", "auto_reject", "audit", "review"),
    "models.arm": ("champion", "challenger"),
    "models.run_kind": ("detector", "classifier"),
    "models.bad_candidate": ("uri_too_long", "no_champion", "prompts"),
    "dashboard.csv": ("patterns", "per_class", "inspectors", "model_versions", "trend"),
    "instructions.kind": INSTRUCTION_KINDS,
    "instructions.outcome": ("confirmed", "changed", "not_defect", "added"),
    "instructions.exclude_refused": ("missing", "too_long", "nothing_left"),
}


def used_keys() -> dict[str, set[str]]:
    """Every literal t("...") key, with the files that use it."""
    files = [*(ROOT / "templates").rglob("*.html"), *(ROOT / "app").rglob("*.py")]
    keys: dict[str, set[str]] = {}
    for path in files:
        for key in T_CALL.findall(path.read_text(encoding="utf-8")):
            keys.setdefault(key, set()).add(str(path.relative_to(ROOT)))
    return keys


def placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_every_ui_language_has_a_catalogue():
    assert set(catalogues()) == set(LANGUAGES)


def test_catalogues_have_the_same_keys():
    en, ko = catalogues()["en"], catalogues()["ko"]
    assert sorted(set(en) - set(ko)) == [], "missing in app/messages/ko/"
    assert sorted(set(ko) - set(en)) == [], "missing in app/messages/en/"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_message_is_empty(language):
    empty = [key for key, message in catalogues()[language].items() if not message.strip()]
    assert empty == []


def test_translations_use_the_same_placeholders():
    en, ko = catalogues()["en"], catalogues()["ko"]
    differ = [key for key in en if placeholders(en[key]) != placeholders(ko[key])]
    assert differ == []


def test_every_key_used_in_templates_and_code_exists():
    used = used_keys()
    assert len(used) > 20, "the scan found too few t() calls; is the regex still right?"
    en = catalogues()["en"]
    missing = {key: sorted(files) for key, files in used.items() if key not in en}
    assert missing == {}


def test_labelled_values_have_names():
    en = catalogues()["en"]
    missing = [f"{g}.{v}" for g, values in LABELLED.items() for v in values if f"{g}.{v}" not in en]
    assert missing == []


def test_defect_types_are_named_from_the_taxonomy_and_unknown_ones_show_their_key():
    assert label("ko", "defect", "hole") == "구멍"
    assert label("en", "severity", "severe") == "Severe"
    assert label("ko", "defect", "brand_new_type") == "brand_new_type"


def test_translate_fills_placeholders_and_survives_a_missing_key():
    assert translate("ko", "nav.signed_in_as", name="kim") == "kim 님"
    assert translate("ko", "no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
        ("en-US,en;q=0.9,ko;q=0.8", "en"),
        ("fr-FR, ko;q=0.5", "ko"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
        ("ko;q=bad, en", "en"),
    ],
)
def test_negotiate_picks_the_best_supported_language(header, expected):
    assert negotiate(header) == expected


def test_a_message_defined_in_two_area_files_is_refused(tmp_path):
    from app.i18n import _merged

    (tmp_path / "a.json").write_text('{"nav.review": "Review queue"}', encoding="utf-8")
    (tmp_path / "b.json").write_text('{"nav.review": "Queue"}', encoding="utf-8")
    with pytest.raises(ValueError, match="nav.review"):
        _merged([tmp_path / "a.json", tmp_path / "b.json"])
