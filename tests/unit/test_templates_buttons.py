"""Every button in the templates has a colour: `.btn` alone sets white text and no
background, which on the page's light grey reads as a disabled button (the models page
had three such buttons)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def coloured_variants() -> set[str]:
    css = (ROOT / "static" / "app.css").read_text()
    return set(re.findall(r"\.(btn-[a-z-]+)\s*\{[^}]*background", css))


def test_every_btn_names_a_variant_with_a_background():
    variants = coloured_variants()
    assert {"btn-primary", "btn-ghost", "btn-primary-inline"} <= variants
    bare = []
    for template in sorted((ROOT / "templates").glob("*.html")):
        for classes in re.findall(r'class="([^"]*\bbtn\b[^"]*)"', template.read_text()):
            if not variants & set(classes.split()):
                bare.append(f"{template.name}: {classes}")
    assert bare == []
