"""The careful simulated inspector (app.simulation.actors): reads the model's regions off
the review page as the templates draw them, and marks the garment's truth in the edits
app/review/edits.py reads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from jinja2 import Environment, FileSystemLoader

from app.simulation.actors import ModelRegion, careful_edits, model_regions
from app.simulation.garments import Garment

TEMPLATES = Path(__file__).parents[2] / "templates"


def region(id_, box, defect_type, severity):  # type: ignore[no-untyped-def]
    x1, y1, x2, y2 = box
    fields = dict(id=id_, x1=x1, y1=y1, x2=x2, y2=y2, defect_type=defect_type,
                  severity=severity, reason="")  # fmt: skip
    return SimpleNamespace(region=SimpleNamespace(**fields), colour=1, number=id_,
                           counted=True, confidence=80, error=None, candidate=None,
                           alternatives=(), exceptions=())  # fmt: skip


def review_page(regions) -> str:  # type: ignore[no-untyped-def]
    """The photo and the region list, rendered by the review page's own macros."""
    macros = (
        Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
        .get_template("_review.html")
        .module
    )
    photo = SimpleNamespace(id=7, width=384, height=384, view="front")
    t = lambda key, **_: key  # noqa: E731
    label = lambda kind, value: value  # noqa: E731
    figure = macros.photo_figure(SimpleNamespace(photo=photo, regions=regions), 1, 1, t, label)
    return str(figure) + "".join(str(macros.region_item(r, t, label)) for r in regions)


def test_the_regions_are_read_off_the_page_as_the_templates_draw_them():
    page = review_page([region(3, (10.5, 20, 60, 80), "hole", "minor"),
                        region(4, (100, 100, 150, 140), "normal", "minor")])  # fmt: skip
    assert model_regions(page) == [
        ModelRegion(3, (10.5, 20.0, 60.0, 80.0), "hole", "minor"),
        ModelRegion(4, (100.0, 100.0, 150.0, 140.0), "normal", "minor"),
    ]


def test_a_careful_inspector_keeps_corrects_dismisses_and_draws():
    item = Garment("g", b"", ("hole", "tear", "stain"),
                   ((10, 20, 60, 80), (100, 100, 150, 140), (300, 300, 340, 330)))  # fmt: skip
    regions = [
        ModelRegion(1, (12, 22, 58, 79), "hole", "moderate"),  # right: kept as it is
        ModelRegion(2, (105, 98, 150, 138), "stain", "minor"),  # on the tear: corrected
        ModelRegion(3, (200, 10, 240, 40), "pilling", "severe"),  # on nothing
        ModelRegion(4, (0, 300, 20, 320), "normal", "minor"),  # nothing, and says so
    ]
    assert careful_edits(item, 7, regions) == [
        {"region": 2, "type": "tear", "severity": "moderate"},
        {"photo": 7, "box": [300, 300, 340, 330], "type": "stain", "severity": "moderate"},
        {"region": 3, "not_defect": True},
    ]


def test_a_good_garment_has_every_model_defect_dismissed():
    regions = [ModelRegion(1, (0, 0, 10, 10), "hole", "severe")]
    assert careful_edits(Garment("g", b"", ()), 7, regions) == [{"region": 1, "not_defect": True}]
