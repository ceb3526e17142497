"""Every button in the templates has a colour: `.btn` alone sets white text and no
background, which on the page's light grey reads as a disabled button (the models page
had three such buttons). The rules may be in any stylesheet under static/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
RULE = re.compile(r"([^{}]+)\{([^}]*)\}")


def btn_rules() -> list[tuple[set[str], str]]:
    """(the btn- classes a rule's selector names, its declarations), from every stylesheet."""
    rules = []
    for sheet in sorted((ROOT / "static").glob("*.css")):
        css = re.sub(r"/\*.*?\*/", "", sheet.read_text(), flags=re.S)
        for selector, body in RULE.findall(css):
            rules.append((set(re.findall(r"\.(btn-[a-z-]+)", selector)), body))
    return rules


def coloured_variants() -> set[str]:
    return {name for names, body in btn_rules() if "background" in body for name in names}


def template_btn_classes() -> list[tuple[str, set[str]]]:
    """(template, the classes of one element that has the `btn` class), for every such element."""
    found = []
    for template in sorted((ROOT / "templates").glob("*.html")):
        for classes in re.findall(r'class="([^"]*\bbtn\b[^"]*)"', template.read_text()):
            found.append((template.name, set(classes.split())))
    return found


def test_every_btn_names_a_variant_with_a_background():
    variants = coloured_variants()
    # btn-confirm is in review.css: a rule is found in whichever stylesheet holds it.
    assert {"btn-primary", "btn-ghost", "btn-primary-inline", "btn-confirm"} <= variants
    bare = [f"{name}: {' '.join(sorted(classes))}" for name, classes in template_btn_classes()
            if not variants & classes]  # fmt: skip
    assert bare == []


def test_every_btn_class_a_template_uses_is_defined():
    defined = {name for names, _ in btn_rules() for name in names}
    used = {
        (name, cls)
        for name, classes in template_btn_classes()
        for cls in classes
        if cls.startswith("btn-")
    }
    assert sorted(f"{name}: {cls}" for name, cls in used if cls not in defined) == []
