"""SVG charts for the ML team's weekly error dashboard, rendered on the server.

Why SVG from the server: the page must be readable without JavaScript, a charting library
would be one more front-end dependency, and the page's CSP (no inline styles or scripts) rules
most of them out. Each function returns one well-formed ``<svg>`` as ``Markup``, drawn with
presentation attributes that page CSS may override through the ``chart-*`` classes. All text
is escaped here. Pure and deterministic: the same input always gives the same string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Literal
from unicodedata import east_asian_width

from markupsafe import Markup, escape

# Okabe–Ito, the most distinct first; yellow last as it is hard to read on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
# A second cue besides colour, for colour-blind readers and greyscale printouts.
DASHES = ("", "6 3", "2 3", "9 3 2 3", "12 4", "4 2 1 2")
COOL, WARM = PALETTE[0], PALETTE[3]  # confusion matrix: agreement, disagreement
BOX_STYLE = {"model": ("#E69F00", True), "human": ("#009E73", False)}  # colour, dashed
TEXT, MUTED, GRID, AXIS, WHITE = "#222222", "#666666", "#dddddd", "#888888", "#ffffff"
CHAR_W = 6.5  # rough width of a 12 px character: there are no font metrics on the server


def _width(text: str) -> float:
    """Rough rendered width: Hangul and other wide glyphs take about two Latin characters."""
    return CHAR_W * sum(2 if east_asian_width(ch) in "WF" else 1 for ch in text)


MIN_CROP_PAD = 24.0  # photo pixels: a tiny box still gets enough surroundings to judge it

ValueFormat = Literal["percent", "count"]
Row = list[float | None]


@dataclass(frozen=True)
class Series:
    """A named line or bar colour; values align with the x labels or categories (None: no data)."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class BoxMark:
    """A box (x1, y1, x2, y2 in photo pixels) drawn by the model or by a human."""

    box: tuple[float, float, float, float]
    label: str
    kind: Literal["model", "human"]


def _num(value: float) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _escape(text: object) -> str:
    return str(escape(text))  # plain str: adding it to a Markup must not escape it twice


def _tag(name: str, inner: str | None = None, /, tip: object = "", **attrs: object) -> str:
    """One element: `inner` is escaped markup; attributes and `tip` are escaped here."""
    if tip:  # a <title> child: browsers show it as a tooltip, screen readers read it
        inner = f"<title>{_escape(tip)}</title>" + (inner or "")
    parts = [name]
    for key, value in attrs.items():
        if value is None or value == "":
            continue
        key = "class" if key == "cls" else key.replace("_", "-")
        shown = _num(value) if isinstance(value, int | float) else _escape(value)
        parts.append(f'{key}="{shown}"')
    head = "<" + " ".join(parts)
    return head + "/>" if inner is None else f"{head}>{inner}</{name}>"


def _text(content: object, x: float, y: float, **attrs: object) -> str:
    attrs = {"fill": TEXT, "cls": "chart-label", **attrs}
    return _tag("text", _escape(content), x=x, y=y, **attrs)


def _line(x1: float, y1: float, x2: float, y2: float, **attrs: object) -> str:
    return _tag("line", x1=x1, y1=y1, x2=x2, y2=y2, **attrs)


def _rect(x: float, y: float, w: float, h: float, fill: str, **attrs: object) -> str:
    return _tag("rect", x=x, y=y, width=w, height=h, fill=fill, **attrs)


def _svg(body: str, *, title: str, view_box: str, **size: object) -> Markup:
    return Markup(
        _tag("svg", body, tip=title, xmlns="http://www.w3.org/2000/svg", cls="chart",
             role="img", aria_label=title, viewBox=view_box, width=size.get("width", "100%"),
             height=size.get("height"), font_family="system-ui, sans-serif", font_size=12)
    )  # fmt: skip


def _empty(title: str, empty_text: str, width: int) -> Markup:
    text = _text(empty_text, width / 2, 28, text_anchor="middle", fill=MUTED, cls="chart-empty")
    return _svg(text, title=title, view_box=f"0 0 {width} 48")


def _fmt(value: float, value_format: ValueFormat, *, short: bool = False) -> str:
    """Percent values are fractions ("91.2 %"); `short` (ticks, targets) drops a ".0"."""
    if value_format == "count":
        return _num(value)
    return f"{_num(value * 100)} %" if short else f"{value * 100:.1f} %"


def _rows(labels: Sequence[str], series: Sequence[Series]) -> tuple[list[Row], float | None]:
    """Each series' values aligned with `labels`, and the largest value (None: no data at all)."""
    rows = []
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)}")
        # NaN is what a mean over nothing looks like; drawn, it would put "nan" in coordinates.
        rows.append([None if v is None or math.isnan(v) else float(v) for v in s.values])
    return rows, max((v for row in rows for v in row if v is not None), default=None)


def _ticks(data_max: float, y_max: float | None, value_format: ValueFormat) -> list[float]:
    """Axis ticks from 0: round steps just past the data (4–5 ticks), or quarters of y_max."""
    if y_max is not None and y_max > 0:
        return [y_max * i / 4 for i in range(5)]
    top = data_max if data_max > 0 else 1.0
    raw, magnitude = top / 4, 10 ** math.floor(math.log10(top / 4))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    step = max(step, 1.0) if value_format == "count" else step  # no "0.5 findings"
    return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]


def _ink(colour: str, opacity: float) -> str:
    """White or dark text, whichever has the better WCAG contrast on `colour` laid over white."""
    srgb = [(255 - opacity * (255 - int(colour[k : k + 2], 16))) / 255 for k in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb)
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return WHITE if 1.05 / (lum + 0.05) > (lum + 0.05) / 0.066 else TEXT


def _legend(
    names: Sequence[str], *, x: float, y: float, right: float, line: bool
) -> tuple[str, float]:
    """Swatch and name per series, wrapping to new rows; returns the markup and the y below it."""
    out, cx = [], x
    for i, name in enumerate(names):
        (colour, dash), step, cls = _style(i), 40 + _width(name), f"chart-series-{i}"
        if cx > x and cx + step > right:
            cx, y = x, y + 18
        swatch = (_line(cx, y - 4, cx + 20, y - 4, stroke=colour, stroke_width=2.5,
                        stroke_dasharray=dash, cls=cls) if line
                  else _rect(cx + 6, y - 10, 11, 11, colour, cls=cls))  # fmt: skip
        out += [swatch, _text(name, cx + 26, y)]
        cx += step
    return "".join(out), y + 8


def _style(i: int) -> tuple[str, str]:
    return PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]


def _series_line(i: int, xy: Sequence[tuple[float, float] | None], tips: Sequence[str]) -> str:
    """One series: a path per run of present points (a None breaks it), a marker per point."""
    colour, dash = _style(i)
    out = []
    for _, run in groupby(xy, key=lambda p: p is None):
        points = [p for p in run if p is not None]
        if len(points) > 1:  # a lone point has no line; its marker below still shows it
            d = "M" + " L".join(f"{_num(x)} {_num(y)}" for x, y in points)
            out.append(_tag("path", d=d, fill="none", stroke=colour, stroke_width=2,
                            stroke_dasharray=dash, stroke_linejoin="round",
                            cls=f"chart-line chart-series-{i}"))  # fmt: skip
    for p, tip in zip(xy, tips, strict=True):
        if p is not None:
            out.append(_tag("circle", tip=tip, cx=p[0], cy=p[1], r=3.5, fill=colour,
                            stroke=WHITE, cls=f"chart-point chart-series-{i}"))  # fmt: skip
    return "".join(out)


def line_chart(
    x_labels: Sequence[str], series: Sequence[Series], *, title: str,
    value_format: ValueFormat = "percent", y_max: float | None = None,
    empty_text: str = "No data", width: int = 640, height: int = 220,
) -> Markup:  # fmt: skip
    """Lines over x labels (e.g. weekly agreement); a None value breaks its line."""
    rows, data_max = _rows(x_labels, series)
    if data_max is None:
        return _empty(title, empty_text, width)
    legend, top = _legend([s.name for s in series], x=48, y=16, right=width - 12, line=True)
    left, right, bottom, top = 52.0, width - 12.0, height - 24.0, top + 10
    ticks = _ticks(data_max, y_max, value_format)
    # Inset by half the widest x label (about 6 px a character) so the end labels fit.
    n, inset = len(x_labels), min(max(3.0 * max(map(len, x_labels)), 10.0), 60.0)
    span = (right - left - 2 * inset) / max(n - 1, 1)

    def x_of(i: int) -> float:
        return (left + right) / 2 if n == 1 else left + inset + i * span

    def y_of(v: float) -> float:
        return bottom - min(max(v, 0.0), ticks[-1]) / ticks[-1] * (bottom - top)

    out = [legend]
    for t in ticks:
        out.append(_line(left, y_of(t), right, y_of(t), stroke=GRID, cls="chart-grid"))
        tick = _fmt(t, value_format, short=True)
        out.append(_text(tick, left - 6, y_of(t) + 4, text_anchor="end", fill=MUTED))
    out.append(_line(left, bottom, right, bottom, stroke=AXIS, cls="chart-axis"))
    every = math.ceil(n / 8)  # keeps x labels from overlapping on long ranges
    for i, label in enumerate(x_labels):
        if i % every == 0:
            out.append(_text(label, x_of(i), bottom + 16, text_anchor="middle", fill=MUTED))
    for i, (s, row) in enumerate(zip(series, rows, strict=True)):
        xy = [None if v is None else (x_of(j), y_of(v)) for j, v in enumerate(row)]
        tips = [
            f"{x} · {s.name} {_fmt(v or 0, value_format)}"
            for x, v in zip(x_labels, row, strict=True)
        ]
        out.append(_series_line(i, xy, tips))
    return _svg("".join(out), title=title, view_box=f"0 0 {width} {height}")


def bar_chart(
    categories: Sequence[str], series: Sequence[Series], *, title: str,
    value_format: ValueFormat = "percent", y_max: float | None = None,
    empty_text: str = "No data", width: int = 640, bar_height: int = 14,
) -> Markup:  # fmt: skip
    """Grouped horizontal bars, one group per category (e.g. precision and recall per class)."""
    rows, data_max = _rows(categories, series)
    if data_max is None:
        return _empty(title, empty_text, width)
    left = min(max(max(_width(c) for c in categories) + 12, 60), width / 3)
    legend, top = _legend([s.name for s in series], x=left - 6, y=16, right=width - 12, line=False)
    right, top = width - 64.0, top + 10  # the right margin holds the printed values
    group_h = len(series) * (bar_height + 3) + 10
    bottom = top + len(categories) * group_h
    ticks = _ticks(data_max, y_max, value_format)

    def x_of(v: float) -> float:
        return left + min(max(v, 0.0), ticks[-1]) / ticks[-1] * (right - left)

    out = [legend]
    for t in ticks:
        out.append(_line(x_of(t), top - 4, x_of(t), bottom, stroke=GRID, cls="chart-grid"))
        tick = _fmt(t, value_format, short=True)
        out.append(_text(tick, x_of(t), bottom + 16, text_anchor="middle", fill=MUTED))
    out.append(_line(left, top - 4, left, bottom, stroke=AXIS, cls="chart-axis"))
    for c, category in enumerate(categories):
        gy = top + c * group_h
        out.append(_text(category, left - 8, gy + (group_h - 10) / 2 + 4, text_anchor="end"))
        for i, (s, row) in enumerate(zip(series, rows, strict=True)):
            y, v = gy + i * (bar_height + 3), row[c]
            shown = "–" if v is None else _fmt(v, value_format)
            tip = f"{category} · {s.name} {shown}"
            if v is not None:
                out.append(_rect(left, y, x_of(v) - left, bar_height, _style(i)[0], tip=tip,
                                 cls=f"chart-bar chart-series-{i}"))  # fmt: skip
            out.append(_text(shown, left + 4 if v is None else x_of(v) + 4, y + bar_height - 3,
                             tip=tip, fill=MUTED if v is None else TEXT, font_size=11,
                             cls="chart-label chart-value"))  # fmt: skip
    return _svg("".join(out), title=title, view_box=f"0 0 {width} {_num(bottom + 24)}")


def confusion_matrix(
    row_labels: Sequence[str], col_labels: Sequence[str], counts: Sequence[Sequence[int]], *,
    title: str, row_axis: str = "model", col_axis: str = "human", empty_text: str = "No data",
) -> Markup:  # fmt: skip
    """Counts of one side's answers (rows) against the other's (columns); shade ∝ count."""
    if len(counts) != len(row_labels) or any(len(row) != len(col_labels) for row in counts):
        raise ValueError(f"counts must be {len(row_labels)} rows of {len(col_labels)} columns")
    peak = max((c for row in counts for c in row), default=0)
    if peak <= 0:
        return _empty(title, empty_text, 640)
    cell_w = min(max(max(_width(c) for c in col_labels) + 12, 44), 120)
    cell_h, label_w = 30, min(max(max(_width(r) for r in row_labels) + 12, 40), 200)
    left, top = 22 + label_w, 44
    width, height = left + len(col_labels) * cell_w + 8, top + len(row_labels) * cell_h + 8
    mid_x, mid_y = left + len(col_labels) * cell_w / 2, top + len(row_labels) * cell_h / 2
    caption = {"text_anchor": "middle", "fill": MUTED, "cls": "chart-label chart-axis-caption"}
    out = [
        _text(col_axis, mid_x, 14, **caption),
        _text(row_axis, 12, mid_y, transform=f"rotate(-90 12 {_num(mid_y)})", **caption),
    ]
    for j, col in enumerate(col_labels):
        out.append(_text(col, left + (j + 0.5) * cell_w, top - 8, text_anchor="middle"))
    for i, (row_label, row) in enumerate(zip(row_labels, counts, strict=True)):
        y = top + i * cell_h
        out.append(_text(row_label, left - 8, y + cell_h / 2 + 4, text_anchor="end"))
        for j, (col_label, count) in enumerate(zip(col_labels, row, strict=True)):
            agree = row_label == col_label
            colour, share = (COOL if agree else WARM), max(count, 0) / peak
            tip = f"{row_axis} {row_label} · {col_axis} {col_label}: {count}"
            x, cls = left + j * cell_w, f"chart-cell chart-cell-{'agree' if agree else 'disagree'}"
            out.append(_rect(x, y, cell_w, cell_h, colour, tip=tip, fill_opacity=f"{share:.2f}",
                             stroke=GRID, cls=cls))  # fmt: skip
            out.append(_text(count, x + cell_w / 2, y + cell_h / 2 + 4, text_anchor="middle",
                             fill=_ink(colour, share), cls="chart-label chart-value"))  # fmt: skip
    # Natural pixel size, not 100 %: a small matrix stretched to the page width gets huge text.
    view_box = f"0 0 {_num(width)} {_num(height)}"
    return _svg("".join(out), title=title, view_box=view_box, width=width, height=height)


def _target_marks(
    targets: Sequence[tuple[str, float]], *, left: float, right: float, bar_bottom: float
) -> list[str]:
    """A tick through the bar per target, labelled above it, one row of labels per target."""
    out = []
    for k, (name, position) in enumerate(targets):
        tx, label_y = left + min(max(position, 0.0), 1.0) * (right - left), 12 + 14 * k
        text = f"{name} {_fmt(position, 'percent', short=True)}"
        half = _width(text) / 2  # keeps the label inside the chart near either end
        anchor = "end" if tx + half > right else "start" if tx - half < left else "middle"
        out.append(_line(tx, label_y + 3, tx, bar_bottom + 4, stroke=TEXT, stroke_width=2,
                         cls="chart-target"))  # fmt: skip
        out.append(_text(text, tx, label_y, text_anchor=anchor, font_size=11,
                         cls="chart-label chart-target-label"))  # fmt: skip
    return out


def stacked_share_bar(
    parts: Sequence[tuple[str, float]], *, title: str,
    targets: Sequence[tuple[str, float]] = (), empty_text: str = "No data",
    width: int = 640, height: int | None = None,
) -> Markup:  # fmt: skip
    """One 100 % bar split into shares (e.g. auto-reject / auto-pass / review).

    Shares are divided by their sum, so fractions and counts both work. A target is (label,
    position from the left as a fraction), drawn as a tick labelled "label 70 %".
    """
    values = [0.0 if v is None or math.isnan(v) else max(float(v), 0.0) for _, v in parts]
    total = sum(values)
    if total <= 0:
        return _empty(title, empty_text, width)
    left, right, bar_h = 8.0, width - 8.0, 28
    top = 10 + 14 * len(targets) + (6 if targets else 0)
    out, names, x = [], [], left
    for i, ((name, _), value) in enumerate(zip(parts, values, strict=True)):
        colour, share = _style(i)[0], value / total
        seg_w, label = share * (right - left), _fmt(share, "percent")
        tip = f"{name} {label}"
        cls = f"chart-bar chart-series-{i}"
        out.append(_rect(x, top, seg_w, bar_h, colour, tip=tip, stroke=WHITE, cls=cls))
        if seg_w >= _width(label) + 8:  # too narrow: the legend still has the share
            out.append(_text(label, x + seg_w / 2, top + bar_h / 2 + 4, tip=tip,
                             text_anchor="middle", fill=_ink(colour, 1.0),
                             cls="chart-label chart-value"))  # fmt: skip
        names.append(f"{name} {label}")
        x += seg_w
    out += _target_marks(targets, left=left, right=right, bar_bottom=top + bar_h)
    legend, bottom = _legend(names, x=left - 6, y=top + bar_h + 22, right=right, line=False)
    view_h = height if height is not None else bottom + 6
    return _svg("".join(out) + legend, title=title, view_box=f"0 0 {width} {_num(view_h)}")


def box_crop(
    image_url: str, image_width: int, image_height: int, boxes: Sequence[BoxMark], *,
    focus: tuple[float, float, float, float], pad: float = 0.25, size: int = 160, title: str,
) -> Markup:  # fmt: skip
    """A crop of a photo around `focus`, with the model's (dashed) and humans' (solid) boxes.

    The crop is only the viewBox over the whole photo placed in photo coordinates: the browser
    crops and scales, the server never opens the image. `size` is the longer side in pixels.
    """
    x1, y1, x2, y2 = focus
    pad_x, pad_y = max(pad * (x2 - x1), MIN_CROP_PAD), max(pad * (y2 - y1), MIN_CROP_PAD)
    cx1, cy1 = max(x1 - pad_x, 0.0), max(y1 - pad_y, 0.0)
    cw = max(min(x2 + pad_x, float(image_width)) - cx1, 1.0)
    ch = max(min(y2 + pad_y, float(image_height)) - cy1, 1.0)
    # Photo pixels per screen pixel: strokes and labels keep one on-screen size at any zoom.
    scale = max(cw, ch) / size
    px_w, px_h = (size, round(size * ch / cw)) if cw >= ch else (round(size * cw / ch), size)
    out = [_tag("image", href=image_url, x=0, y=0, width=image_width, height=image_height,
                preserveAspectRatio="none", cls="chart-photo")]  # fmt: skip
    for mark in boxes:
        colour, dashed = BOX_STYLE[mark.kind]
        bx1, by1, bx2, by2 = mark.box
        tip = f"{mark.kind} · {mark.label}"
        dash = f"{_num(5 * scale)} {_num(3 * scale)}" if dashed else None
        out.append(_rect(bx1, by1, bx2 - bx1, by2 - by1, "none", tip=tip, stroke=colour,
                         stroke_width=2 * scale, stroke_dasharray=dash,
                         cls=f"chart-box chart-box-{mark.kind}"))  # fmt: skip
        # Model labels above the box and human ones below keep the two apart (inside the box
        # where the crop has no room); a white halo keeps them readable on any fabric.
        if mark.kind == "model":
            label_y = by1 - 3 * scale if by1 - 12 * scale > cy1 else by1 + 11 * scale
        else:
            label_y = by2 + 11 * scale if by2 + 12 * scale < cy1 + ch else by2 - 3 * scale
        out.append(_text(mark.label, bx1 + 2 * scale, label_y, font_size=10 * scale,
                         fill=colour, stroke=WHITE, stroke_width=2.5 * scale,
                         paint_order="stroke", cls="chart-label chart-box-label"))  # fmt: skip
    view_box = " ".join(_num(v) for v in (cx1, cy1, cw, ch))
    return _svg("".join(out), title=title, view_box=view_box, width=px_w, height=px_h)
