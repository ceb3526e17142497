"""Class balance by repetition: the rule the detector's oversampling and the classifier's
instruction data share, pure and free of image libraries.

The detector repeats images that hold rare boxes (models.training.augment.oversample);
the classifier's instruction data repeats crops of rare defect types (oversample_items).
Both aim every class at `min_share` of the whole, lowered to what is reachable
(reachable_share), and add at most `max_extra` times the items, so that a class that
barely exists cannot grow the set without bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
# The detector's defaults (models.training.augment.AugmentConfig.min_share and oversample's
# max_extra), which the classifier's instruction data uses too.
MIN_SHARE = 0.1
MAX_EXTRA = 3.0


def reachable_share(min_share: float, classes: int) -> float:
    """min_share where every class can have it, else half an even share.

    Every class at min_share needs min_share x classes <= 1, and such targets are kept as
    they are. Past that, the target is min(min_share, 1 / (2 x classes)), which is then
    always 1 / (2 x classes). Not the even share 1 / classes itself: reaching it needs
    every class exactly even, which images holding several classes almost never allow,
    so the loop would run to its cap; half of it lifts the rare classes within reach and
    leaves the common ones their lead.
    """
    if min_share * classes <= 1:
        return min_share
    return min(min_share, 1 / (2 * classes))


@dataclass(frozen=True)
class Oversampling(Generic[K]):
    """What oversample_items did: extra copies per item, and the classes before and after."""

    target_share: float  # the share aimed at (min_share, or lower where unreachable)
    extra: dict[K, int]  # item -> extra copies (items not named get none)
    before: dict[str, int]
    after: dict[str, int]
    reached: bool  # every class got the target share before the cap

    @property
    def added(self) -> int:
        return sum(self.extra.values())


def oversample_items(
    items: Sequence[tuple[K, str]], min_share: float, max_extra: float = MAX_EXTRA
) -> Oversampling[K]:
    """Repeats of (item, class) pairs of rare classes, until each class has min_share.

    Each item has one class (a crop and its defect type). The rarest class is lifted one
    copy at a time, its items taken round robin in the given order, so the same items
    give the same copies. At most max_extra x len(items) copies are added.
    """
    before = Counter(label for _, label in items)
    counts = Counter(before)
    extra: Counter[K] = Counter()
    target = reachable_share(min_share, len(counts)) if counts else 0.0
    reached = True
    if counts and min_share > 0:
        pools = {label: [item for item, name in items if name == label] for label in counts}
        picked = dict.fromkeys(counts, 0)
        reached = False
        for _ in range(int(max_extra * len(items))):
            total = sum(counts.values())
            label = min(counts, key=lambda name: (counts[name] / total, name))
            if counts[label] / total >= target:
                reached = True
                break
            pool = pools[label]
            extra[pool[picked[label] % len(pool)]] += 1
            picked[label] += 1
            counts[label] += 1
        else:
            total = sum(counts.values())
            reached = min(counts.values()) / total >= target
    return Oversampling(
        target_share=target,
        extra=dict(extra),
        before=dict(sorted(before.items())),
        after=dict(sorted(counts.items())),
        reached=reached,
    )
