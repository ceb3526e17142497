"""Replay the recorded history under other bands: how much the models would decide, and
how many defects would pass, estimated only from what people actually checked. Pure.

Where the truth comes from. Under the band in force when it was routed, an item either
went to an inspector ("reviewed": the band sent it, or a failure did; every such item has
a human verdict once decided) or was decided by the models ("automatic"), and a random
`audit_rate` share of those went to an inspector as well ("audited"). Replayed under
another band, a reviewed item's truth is known: those items are a census. An automatic
item's truth is unknown; the audits are a uniform random sample of the automatic items
(app.policy.sampling), so what the new band would get wrong among them is estimated as
(automatic items the new band would decide so) x (the share among the audited ones of
them), with a Wilson interval. That share needs enough audits behind it: below
`min_support` the rate is refused, not guessed. Items still waiting for their decision
are left out by the caller.

A rate is per routed item: escapes are defective items (an inspector's "reject") the new
band would pass automatically, false rejects good items it would reject automatically.
An inspector's verdict is taken as the truth: the interval covers the audits' sampling,
not inspectors' own mistakes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from app.policy.metrics import wilson_interval
from app.policy.routing import DecisionTable, RouteKind, Thresholds, Verdict, route

Stratum = Literal["reviewed", "audited", "automatic"]
NO_AUDIT = 1.0  # an audit draw that never audits: the replay asks what the band decides
# The grid of `loupe thresholds simulate --grid` (the field report tried three of these).
GRID_HIGH = (0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99)
GRID_LOW = (0.50, 0.60, 0.70, 0.75, 0.80, 0.85, 0.90)
FIELD_REPORT_BANDS = "0.95:0.70,0.93:0.75,0.90:0.80"  # the three the field report tried
MIN_SUPPORT = 30  # audits (or decided items) below which a rate is refused
VERBS: dict[RouteKind, str] = {"auto_pass": "pass", "auto_reject": "reject", "review": "review"}


@dataclass(frozen=True)
class RecordedRegion:
    """A region as the models scored it when the item was routed."""

    detector_score: float
    confidence: float
    defect_type: str
    severity: str
    failed: bool = False


@dataclass(frozen=True)
class RecordedItem:
    # None: a human's whatever the band (inference failed, or no detector yet).
    regions: tuple[RecordedRegion, ...] | None
    stratum: Stratum
    truth: Verdict | None  # the inspector's verdict; None for an automatic item


@dataclass(frozen=True)
class Band:
    high: float
    low: float

    def __str__(self) -> str:
        return f"{self.high:.2f}:{self.low:.2f}"


@dataclass(frozen=True)
class Rate:
    """An estimated share of all items, with its 95 % interval; None when refused."""

    value: float | None
    low: float | None
    high: float | None
    labeled: int  # the items with a human verdict behind it (reviewed + audited)
    audited: int  # the audits the automatic items' share comes from
    known: int = 0  # the band's mistakes among items the inspectors reviewed (a census)
    unchecked: int = 0  # automatic items the band would decide so: only audits tell
    found: int = 0  # its mistakes among the `audited` of those
    refused: str | None = None


@dataclass(frozen=True)
class BandEstimate:
    band: Band
    items: int
    automatic: int
    to_people: int
    automatic_share: float
    human_share: float  # to people, and audit_rate of the automatic ones
    escape: Rate
    false_reject: Rate

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "band": {"high": self.band.high, "low": self.band.low}}


def parse_bands(text: str) -> list[Band]:
    """'0.95:0.70,0.93:0.75' as bands; ValueError saying which pair is wrong and why."""
    bands = []
    for pair in (p.strip() for p in text.split(",")):
        high_text, sep, low_text = pair.partition(":")
        try:
            high, low = float(high_text), float(low_text)
        except ValueError:
            high = low = float("nan")
        if not sep or not (0.0 <= low < high <= 1.0):
            raise ValueError(
                f"{pair!r} is not a band: write HIGH:LOW with 0 <= LOW < HIGH <= 1, "
                "for example 0.95:0.70"
            )
        bands.append(Band(high, low))
    if not bands:
        raise ValueError("no band given: write HIGH:LOW pairs, for example 0.95:0.70,0.90:0.80")
    return bands


def grid() -> list[Band]:
    return [Band(h, lo) for h in GRID_HIGH for lo in GRID_LOW if lo < h]


def route_under(
    item: RecordedItem, band: Band, *, table: DecisionTable, detector_threshold: float
) -> RouteKind:
    if item.regions is None:
        return "review"
    thresholds = Thresholds(detector=detector_threshold, high=band.high, low=band.low)
    return route(item.regions, thresholds, table, NO_AUDIT).kind


def replay(
    items: Sequence[RecordedItem],
    bands: Iterable[Band],
    *,
    table: DecisionTable,
    detector_threshold: float,
    audit_rate: float,
    min_support: int,
) -> list[BandEstimate]:
    """Each band's shares and estimated error rates on `items` (decided ones only)."""
    return [
        _estimate(items, band, table, detector_threshold, audit_rate, min_support) for band in bands
    ]


def _estimate(
    items: Sequence[RecordedItem],
    band: Band,
    table: DecisionTable,
    detector_threshold: float,
    audit_rate: float,
    min_support: int,
) -> BandEstimate:
    kinds = [route_under(i, band, table=table, detector_threshold=detector_threshold)
             for i in items]  # fmt: skip
    n = len(items)
    automatic = sum(k != "review" for k in kinds)
    to_people = n - automatic

    def rate(kind: RouteKind, wrong: Verdict) -> Rate:
        return _rate(items, kinds, kind, wrong, min_support)

    return BandEstimate(
        band=band,
        items=n,
        automatic=automatic,
        to_people=to_people,
        automatic_share=automatic / n if n else 0.0,
        human_share=(to_people + audit_rate * automatic) / n if n else 0.0,
        escape=rate("auto_pass", "reject"),
        false_reject=rate("auto_reject", "pass"),
    )


def _rate(
    items: Sequence[RecordedItem],
    kinds: Sequence[RouteKind],
    kind: RouteKind,
    wrong: Verdict,
    min_support: int,
) -> Rate:
    """The share of all items the band routes `kind` whose truth is `wrong`.

    The automatic items are split by what the new band does with them (known: their
    regions were recorded), so only those it would route `kind` lean on the audits, and
    only on the audits among them: a band that sends them all to people has no doubt.
    """
    census = sum(
        i.stratum == "reviewed" and k == kind and i.truth == wrong
        for i, k in zip(items, kinds, strict=True)
    )
    group = [i for i, k in zip(items, kinds, strict=True) if i.stratum != "reviewed" and k == kind]
    audited = [i.truth == wrong for i in group if i.stratum == "audited"]
    labeled = sum(i.stratum != "automatic" for i in items)
    n = len(items)
    refused = None
    if n < min_support:
        refused = f"{n} decided items; at least {min_support} are needed"
    elif group and len(audited) < min_support:
        refused = (
            f"{len(audited)} audits stand for the {len(group)} automatic items it would "
            f"{VERBS[kind]}; at least {min_support} are needed"
        )
    counts = Rate(None, None, None, labeled, len(audited), census, len(group), sum(audited))
    if refused:
        return replace(counts, refused=refused)
    share, low, high = 0.0, 0.0, 0.0
    if group:
        share = sum(audited) / len(audited)
        low, high = wilson_interval(sum(audited), len(audited)) or (0.0, 1.0)
    return replace(
        counts,
        value=(census + len(group) * share) / n,
        low=(census + len(group) * low) / n,
        high=(census + len(group) * high) / n,
    )


def frontier(estimates: Iterable[BandEstimate]) -> list[BandEstimate]:
    """The bands no other beats on both human work and escapes (refused ones left out),
    least human work first: the curve the ML team picks a point on."""
    known = sorted(
        (e for e in estimates if e.escape.value is not None),
        key=lambda e: (e.human_share, e.escape.value),
    )
    best: list[BandEstimate] = []
    for e in known:
        assert e.escape.value is not None
        if not best or e.escape.value < (best[-1].escape.value or 0.0):
            best.append(e)
    return best


# --- a band with a guarantee (Learn then Test) ---------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """The band that sends the fewest items to people among those shown, with probability
    at least `confidence`, to keep the escape rate at or under `max_escape`; None when the
    data can show that of no band."""

    max_escape: float
    confidence: float
    tested: int  # bands tested, in order, until one could not be shown safe
    valid: list[BandEstimate]
    chosen: BandEstimate | None


def escape_p_value(estimate: BandEstimate, max_escape: float) -> float:
    """A valid p-value for "this band's escape rate exceeds `max_escape`", on the window's
    items as a population.

    The rate is (census + M x p) / n: `census` escapes the inspectors saw, M automatic
    items the band would pass, of which a share p is defective. "Above max_escape" is
    p > p* = (max_escape x n - census) / M, tested on the audits among those M (k defects
    in m) with Learn then Test's Hoeffding-Bentkus p-value for a binary loss (Angelopoulos
    et al. 2021, section 3.2). Audits are drawn without replacement from the M, for which
    the binomial's tails are conservative.
    """
    rate, n = estimate.escape, estimate.items
    census, group, audits, found = rate.known, rate.unchecked, rate.audited, rate.found
    if n == 0:
        return 1.0
    if group == 0:
        return 0.0 if census <= max_escape * n else 1.0
    threshold = (max_escape * n - census) / group
    if threshold < 0:
        return 1.0
    if threshold >= 1:
        return 0.0
    if audits == 0:
        return 1.0
    return hoeffding_bentkus(found / audits, audits, threshold)


def hoeffding_bentkus(r_hat: float, n: int, alpha: float) -> float:
    """P-value of "risk > alpha" after a mean loss of r_hat over n binary losses: the
    smaller of Hoeffding's and Bentkus's (the binary form, without Bentkus's factor e)."""
    hoeffding = math.exp(-n * _h1(min(r_hat, alpha), alpha))
    bentkus = binomial_cdf(math.ceil(n * r_hat), n, alpha)
    return min(hoeffding, bentkus)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), summed in log space (n in the thousands stays exact)."""
    if k >= n or p <= 0.0:
        return 1.0
    if k < 0 or p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
        + i * log_p + (n - i) * log_q
        for i in range(k + 1)
    ]  # fmt: skip
    top = max(log_terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms))


def _h1(r: float, alpha: float) -> float:
    # Kullback-Leibler divergence of Bernoulli(r) from Bernoulli(alpha); 0 log 0 = 0.
    first = r * math.log(r / alpha) if r > 0 else 0.0
    second = (1 - r) * math.log((1 - r) / (1 - alpha)) if r < 1 else 0.0
    return first + second


def recommend(
    estimates: Sequence[BandEstimate], *, max_escape: float, confidence: float
) -> Recommendation:
    """Learn then Test with fixed-sequence testing: the bands from the most human work to
    the least (an order the routes alone decide, never the verdicts), each tested at level
    1 - confidence until the first that cannot be shown safe. Every band before it keeps
    the escape rate under `max_escape` together, with probability `confidence`; the one
    of them with the least human work is chosen."""
    delta = 1.0 - confidence
    ordered = sorted(estimates, key=lambda e: (-e.human_share, -e.band.high, -e.band.low))
    valid: list[BandEstimate] = []
    for e in ordered:
        if escape_p_value(e, max_escape) > delta:
            break
        valid.append(e)
    # Ties on human work go to the lower estimated escape rate, then the stricter band.
    chosen = min(
        valid, key=lambda e: (e.human_share, e.escape.value or 0.0, -e.band.high, -e.band.low),
        default=None,
    )  # fmt: skip
    return Recommendation(max_escape, confidence, len(valid) + (len(valid) < len(ordered)),
                          valid, chosen)  # fmt: skip
