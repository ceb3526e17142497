"""Server-rendered SVG charts: well-formed, escaped, deterministic, and drawing what they say."""

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from app.dashboard.charts import (
    COOL,
    PALETTE,
    WARM,
    BoxMark,
    Series,
    bar_chart,
    box_crop,
    confusion_matrix,
    line_chart,
    stacked_share_bar,
)

NS = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(1)</script>\"&'"
WEEKS = ["2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48"]


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(NS + tag) if cls in e.get("class", "").split()]


def tooltips(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(NS + "title")]


def texts(root: ET.Element) -> list[str]:
    """Visible text of <text> elements (their <title> child is a tooltip, not shown)."""
    out = []
    for e in root.iter(NS + "text"):
        title = e.find(NS + "title")
        out.append((e.text or "") + ("" if title is None else title.tail or ""))
    return out


ALL_CHARTS = {
    "line": lambda title, label: line_chart(
        [label, *WEEKS[1:]], [Series(label, [0.9, 0.8, None, 0.85, 0.912])], title=title
    ),
    "bar": lambda title, label: bar_chart(
        [label, "hole"], [Series(label, [0.9, None]), Series("recall", [0.5, 0.7])], title=title
    ),
    "matrix": lambda title, label: confusion_matrix(
        [label, "hole", "missed"], [label, "hole"], [[5, 1], [0, 3], [2, 0]], title=title
    ),
    "share": lambda title, label: stacked_share_bar(
        [(label, 0.12), ("auto_pass", 0.58), ("review", 0.30)],
        title=title,
        targets=[(label, 0.7)],
    ),
    "crop": lambda title, label: box_crop(
        f"/photos/1.jpg?x=1&y={label}",
        800,
        600,
        [BoxMark((100, 100, 200, 180), label, "model"), BoxMark((90, 95, 210, 190), "a", "human")],
        focus=(90, 95, 210, 190),
        title=title,
    ),
}


@pytest.mark.parametrize("kind", ALL_CHARTS)
def test_every_chart_is_a_complete_accessible_svg(kind):
    root = parse(ALL_CHARTS[kind]("Weekly errors", "stain"))

    assert root.tag == NS + "svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Weekly errors"
    assert len(root.get("viewBox").split()) == 4
    assert root[0].tag == NS + "title" and root[0].text == "Weekly errors"


@pytest.mark.parametrize("kind", ALL_CHARTS)
def test_untrusted_text_is_escaped_everywhere(kind):
    svg = str(ALL_CHARTS[kind](EVIL, EVIL))

    assert "<script>" not in svg
    assert "\"&'" not in svg
    root = ET.fromstring(svg)  # still well-formed, and the text reads back unchanged
    assert root.get("aria-label") == EVIL
    assert any(EVIL in t for t in tooltips(root) + texts(root))


@pytest.mark.parametrize("kind", ALL_CHARTS)
def test_no_inline_styles_for_the_content_security_policy(kind):
    svg = str(ALL_CHARTS[kind]("t", "stain"))

    assert "style" not in svg
    assert "<script" not in svg


@pytest.mark.parametrize("kind", ALL_CHARTS)
def test_same_input_gives_the_same_string(kind):
    assert ALL_CHARTS[kind]("t", "stain") == ALL_CHARTS[kind]("t", "stain")


def test_a_missing_value_in_the_middle_breaks_the_line_in_two():
    root = parse(line_chart(WEEKS, [Series("agreement", [0.9, 0.8, None, 0.85, 0.9])], title="t"))

    assert len(by_class(root, "path", "chart-line")) == 2


def test_an_isolated_point_gets_a_marker_but_no_line():
    root = parse(line_chart(WEEKS, [Series("agreement", [0.9, None, 0.8, None, None])], title="t"))

    assert by_class(root, "path", "chart-line") == []
    assert len(by_class(root, "circle", "chart-point")) == 2


def test_one_point_marker_per_present_value_with_a_tooltip():
    series = [Series("agreement", [0.9, None, 0.912, 0.8, None]), Series("recall", [0.5] * 5)]
    root = parse(line_chart(WEEKS, series, title="t"))

    points = by_class(root, "circle", "chart-point")
    assert len(points) == 3 + 5
    assert all(p.find(NS + "title") is not None for p in points)
    assert "2026-W46 · agreement 91.2 %" in tooltips(root)


def test_series_differ_by_colour_and_dash_pattern():
    series = [Series("a", [0.1, 0.2]), Series("b", [0.3, 0.4])]
    root = parse(line_chart(WEEKS[:2], series, title="t"))

    first, second = by_class(root, "path", "chart-line")
    assert first.get("stroke") == PALETTE[0] and second.get("stroke") == PALETTE[1]
    assert first.get("stroke-dasharray") != second.get("stroke-dasharray")
    assert "chart-series-1" in second.get("class")
    assert [t for t in texts(root) if t in ("a", "b")] == ["a", "b"]  # the legend


def test_percent_axis_ticks_and_count_format():
    percent = parse(line_chart(WEEKS[:2], [Series("a", [0.5, 0.93])], title="t"))
    count = parse(line_chart(WEEKS[:2], [Series("a", [3, 37])], title="t", value_format="count"))

    assert {"0 %", "25 %", "50 %", "75 %", "100 %"} <= set(texts(percent))
    assert {"0", "10", "20", "30", "40"} <= set(texts(count))
    assert "2026-W45 · a 37" in tooltips(count)


def test_y_max_fixes_the_axis_to_quarters():
    root = parse(line_chart(WEEKS[:2], [Series("a", [0.1, 0.2])], title="t", y_max=1.0))

    grid = by_class(root, "line", "chart-grid")
    assert len(grid) == 5
    assert "100 %" in texts(root)


def test_many_x_labels_are_thinned_out():
    labels = [f"2026-W{w}" for w in range(30, 42)]
    root = parse(line_chart(labels, [Series("a", [0.5] * 12)], title="t"))

    shown = [t for t in texts(root) if t.startswith("2026-W")]
    assert shown == labels[::2]


@pytest.mark.parametrize(
    "render",
    [
        lambda: line_chart([], [], title="t"),
        lambda: line_chart(WEEKS[:2], [Series("a", [None, None])], title="t"),
        lambda: line_chart(WEEKS[:1], [Series("a", [float("nan")])], title="t"),
        lambda: bar_chart(["stain"], [Series("precision", [None])], title="t"),
        lambda: confusion_matrix([], [], [], title="t"),
        lambda: confusion_matrix(["stain"], ["stain"], [[0]], title="t"),
        lambda: stacked_share_bar([], title="t"),
        lambda: stacked_share_bar([("review", 0.0)], title="t"),
    ],
)
def test_empty_data_says_so_instead_of_raising(render):
    root = parse(render())

    assert texts(root) == ["No data"]


def test_empty_text_is_configurable_and_escaped():
    root = parse(bar_chart([], [], title="t", empty_text="Keine Daten <yet>"))

    assert texts(root) == ["Keine Daten <yet>"]


def test_values_must_align_with_the_labels():
    with pytest.raises(ValueError):
        line_chart(WEEKS, [Series("a", [0.5])], title="t")
    with pytest.raises(ValueError):
        confusion_matrix(["a", "b"], ["a"], [[1]], title="t")


def test_bar_chart_prints_values_and_a_dash_for_missing_ones():
    series = [Series("precision", [0.9, None]), Series("recall", [0.5, 0.75])]
    root = parse(bar_chart(["stain", "hole"], series, title="t"))

    assert len(by_class(root, "rect", "chart-bar")) == 3
    values = [t for t, e in zip(texts(root), root.iter(NS + "text"), strict=True)
              if "chart-value" in e.get("class")]  # fmt: skip
    assert values == ["90.0 %", "50.0 %", "–", "75.0 %"]
    assert "hole · precision –" in tooltips(root)


def test_bar_chart_grows_with_the_categories():
    def height(n: int) -> float:
        categories = [f"class {i}" for i in range(n)]
        root = parse(bar_chart(categories, [Series("recall", [0.5] * n)], title="t"))
        return float(root.get("viewBox").split()[3])

    assert height(8) > height(2)


def test_confusion_matrix_cells_shades_and_counts():
    rows, cols = ["stain", "hole", "missed"], ["stain", "hole"]
    root = parse(confusion_matrix(rows, cols, [[8, 2], [1, 4], [3, 0]], title="t"))

    cells = by_class(root, "rect", "chart-cell")
    assert len(cells) == 6
    diagonal = {c.get("fill") for c in by_class(root, "rect", "chart-cell-agree")}
    off = {c.get("fill") for c in by_class(root, "rect", "chart-cell-disagree")}
    assert diagonal == {COOL} and off == {WARM}
    assert len(by_class(root, "rect", "chart-cell-agree")) == 2
    assert cells[0].get("fill-opacity") == "1.00"  # the largest count
    assert cells[1].get("fill-opacity") == "0.25"
    assert "model missed · human stain: 3" in tooltips(root)
    assert {"8", "2", "1", "4", "3", "0", "model", "human"} <= set(texts(root))


def test_confusion_matrix_text_stays_readable_on_dark_cells():
    root = parse(confusion_matrix(["a", "b"], ["a", "b"], [[10, 0], [0, 1]], title="t"))

    fills = {(e.text or ""): e.get("fill") for e in by_class(root, "text", "chart-value")}
    assert fills["10"] == "#ffffff"  # on full blue
    assert fills["1"] != "#ffffff"  # on a pale tint


def test_stacked_share_bar_segments_labels_and_targets():
    parts = [("auto_reject", 12), ("auto_pass", 58), ("review", 30)]  # counts work too
    root = parse(stacked_share_bar(parts, title="t", targets=[("target automatic", 0.7)]))

    segments = by_class(root, "rect", "chart-bar")
    assert [float(s.get("width")) for s in segments] == pytest.approx([74.9, 361.9, 187.2])
    assert {"auto_reject 12.0 %", "auto_pass 58.0 %", "review 30.0 %"} <= set(texts(root))
    (tick,) = by_class(root, "line", "chart-target")
    assert float(tick.get("x1")) == pytest.approx(8 + 0.7 * 624, abs=0.1)
    assert "target automatic 70 %" in texts(root)


def test_box_crop_view_box_is_the_padded_focus():
    root = parse(box_crop("/p.jpg", 1000, 800, [], focus=(100, 100, 300, 200), title="t"))

    # 25 % of 200 wide and of 100 high, at least 24 px
    assert root.get("viewBox") == "50 75 300 150"
    assert (root.get("width"), root.get("height")) == ("160", "80")


def test_box_crop_is_clamped_to_the_photo():
    root = parse(box_crop("/p.jpg", 400, 300, [], focus=(10, 250, 390, 295), title="t"))

    # x: 10-95 and 390+95 clamp to 0 and 400; y: 250-24 = 226, 295+24 clamps to 300
    assert root.get("viewBox") == "0 226 400 74"


def test_box_crop_draws_the_photo_and_one_rect_per_box():
    boxes = [
        BoxMark((100, 100, 200, 200), "stain", "model"),
        BoxMark((110, 90, 210, 190), "stain", "human"),
        BoxMark((120, 120, 150, 150), "hole", "human"),
    ]
    root = parse(box_crop("/photos/7.jpg", 1000, 800, boxes, focus=(100, 90, 210, 200), title="t"))

    (image,) = root.iter(NS + "image")
    assert image.get("href") == "/photos/7.jpg"
    assert (image.get("x"), image.get("width"), image.get("height")) == ("0", "1000", "800")
    rects = list(root.iter(NS + "rect"))
    assert len(rects) == 3
    model, human, _ = rects
    assert model.get("stroke-dasharray") and not human.get("stroke-dasharray")
    assert model.get("stroke") != human.get("stroke")
    assert all(r.get("fill") == "none" for r in rects)
    assert "model · stain" in tooltips(root)
