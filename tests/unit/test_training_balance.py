"""Class balance by repetition for one-label items (crops): the detector's share rule."""

from models.training.balance import oversample_items, reachable_share


def _items(**counts: int) -> list[tuple[int, str]]:
    items, next_id = [], 0
    for label, n in counts.items():
        for _ in range(n):
            items.append((next_id, label))
            next_id += 1
    return items


def test_a_rare_class_is_lifted_to_its_share_round_robin() -> None:
    items = _items(stain=18, hole=2)  # hole: 10 % of 20, below 0.2
    result = oversample_items(items, min_share=0.2)
    assert result.before == {"hole": 2, "stain": 18}
    # 18 stains need 4.5 holes for a fifth: 5 holes, so 3 copies, spread over both holes.
    assert result.after == {"hole": 5, "stain": 18}
    assert result.extra == {18: 2, 19: 1}
    assert result.added == 3 and result.reached
    assert result.after["hole"] / sum(result.after.values()) >= 0.2


def test_the_same_items_give_the_same_copies() -> None:
    items = _items(stain=30, hole=1, pilling=3)
    assert oversample_items(items, 0.1) == oversample_items(list(items), 0.1)


def test_a_balanced_set_or_a_share_of_zero_adds_nothing() -> None:
    assert oversample_items(_items(stain=5, hole=5), 0.3).added == 0
    result = oversample_items(_items(stain=50, hole=1), 0.0)
    assert result.added == 0 and result.after == result.before


def test_the_cap_stops_a_class_that_cannot_reach_its_share() -> None:
    result = oversample_items(_items(stain=100, hole=1), 0.3, max_extra=0.05)
    assert result.added == 5  # 0.05 x 101 items
    assert result.after["hole"] == 6 and not result.reached


def test_many_classes_aim_at_half_an_even_share() -> None:
    assert reachable_share(0.1, 8) == 0.1
    assert reachable_share(0.1, 13) == 1 / 26
    items = _items(**{f"t{i}": 40 for i in range(12)}, rare=1)
    result = oversample_items(items, 0.1)
    assert result.target_share == 1 / 26
    assert result.after["rare"] / sum(result.after.values()) >= 1 / 26 and result.reached
